"""Run one case (a property on a tier) for one implementation, and keep what a report needs.

Each example is judged (``judge``) into nothing, a hard finding or a soft one:

* hard: the result is wrong by value, its shape or dtype is, or the implementation's own
  code raised. Hypothesis stops at the first and shrinks it.
* soft: the only differences are NaN payloads or signed zeros (compared by bits), or JAX's
  TPU interpreter itself faulted and, re-run with race detection off, the result is right.
  The search goes on past these, so that they never hide a hard finding. If none turns up,
  the search runs again with the soft finding made hard, so that Hypothesis shrinks it.

The verdict is "failed" for a wrong result or a raise from the implementation; "error" for
an interpreter fault alone, or when Hypothesis stopped without a counterexample.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import seed as hypothesis_seed
from hypothesis import settings
from hypothesis.reporting import with_reporter
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.attribution import attribute
from properties._src.cases import Case, Property
from properties._src.constraints import Constraint
from properties._src.diagnosis import NONE, Diagnosis, explain, single
from properties._src.hypothesis_test import property_test
from properties._src.implementations import Implementation, call
from properties._src.regressions import REGRESSIONS
from properties._src.shapes import Shapes

VALUE_EQUAL = ("nan-payload", "signed-zero")  # differences that compare equal by value
SOFT_CODES = (*VALUE_EQUAL, "interpreter-fault")


@dataclass(frozen=True)
class Failure:
    """An update the property rejects: the result (``None`` if the call raised), why, what
    kind of difference it is, and the explicit example's name if it was one."""

    update: Update
    actual: np.ndarray | None
    message: str
    diagnosis: Diagnosis = NONE
    example: str | None = None

    @property
    def soft(self) -> bool:
        return bool(self.diagnosis.codes) and set(self.diagnosis.codes) <= set(SOFT_CODES)


@dataclass(frozen=True)
class Outcome:
    """The verdict of one case, with the failure or error behind it."""

    case: Case
    status: str  # "passed", "failed" (with ``failure``) or "error" (with ``error`` or a fault)
    examples: int
    seconds: float
    failure: Failure | None = None
    error: str | None = None
    diagnosis: Diagnosis = NONE
    replay: str | None = None


def _describe(error: BaseException) -> str:
    """The error's type and message; of a long message (a traceback inside), its last line."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' ... '.join(lines[:1] + lines[-1:]) if len(lines) > 1 else str(error)}"


def _wrong(prop: Property, update: Update, actual: np.ndarray, compare: str) -> str | None:
    """Why ``prop`` rejects ``actual`` compared as ``compare``, or ``None``."""
    try:
        prop.verify(update, actual, compare)
    except Exception as error:
        return str(error) if isinstance(error, AssertionError) else _describe(error)
    return None


def _result_failure(
    prop: Property, update: Update, actual: np.ndarray, compare: str
) -> Failure | None:
    """The ``Failure`` if ``prop`` rejects ``actual``, with every kind of difference named."""
    message = _wrong(prop, update, actual, compare)
    if message is None:
        return None
    found = explain(update, actual)
    if compare == "bits" and _wrong(prop, update, actual, "values") is None:
        return Failure(update, actual, message, found.only(VALUE_EQUAL))  # soft
    wrong = found.without(VALUE_EQUAL)
    if not wrong.codes:  # the property's own reason, where the whole cache tells no more
        wrong = single("values", message)
    kept = found.only(VALUE_EQUAL) if compare == "bits" else NONE
    return Failure(update, actual, message, wrong + kept)


def judge(
    implementation: Implementation,
    prop: Property,
    update: Update,
    compare: str = "bits",
    mesh: Mesh | None = None,
) -> Failure | None:
    """Run ``update`` (on ``mesh``, if given); the ``Failure`` if ``prop`` rejects it or the
    call raised, else None."""
    try:
        actual = call(implementation, update, mesh=mesh)
    except Exception as error:
        raised = attribute(error)
        if not raised.interpreter_fault:
            return Failure(
                update,
                None,
                f"the implementation raised {_describe(error)}",
                single("raised", f"The implementation raised {raised}."),
            )
        return _interpreter_fault(implementation, prop, update, compare, str(raised), mesh)
    return _result_failure(prop, update, actual, compare)


def _interpreter_fault(implementation, prop, update, compare, raised: str, mesh) -> Failure:
    """JAX's interpreter faulted: the verdict is what the same call gives without races."""
    fault = f"JAX's TPU interpreter itself raised {raised} (its own code, not the implementation's)"
    headline = "JAX's TPU interpreter faulted (not the implementation)"
    try:
        actual = call(implementation, update, detect_races=False, mesh=mesh)
    except Exception as error:
        again = attribute(error)
        return Failure(
            update,
            None,
            headline,
            single(
                "interpreter-fault",
                f"{fault}; with race detection off it raises {again} as well.",
            ),
        )
    wrong = _result_failure(prop, update, actual, compare)
    if wrong is None:
        return Failure(
            update,
            None,
            headline,
            single(
                "interpreter-fault",
                f"{fault}; with race detection off the result matches the oracle.",
            ),
        )
    note = single("interpreter-fault", f"{fault}; with race detection off the result differs.")
    return Failure(update, actual, wrong.message, note + wrong.diagnosis)


class _Search:
    """One Hypothesis search: counts examples tried, keeps the findings."""

    def __init__(self, implementation, case, compare, promote_soft: bool, before_call, mesh):
        self.implementation, self.case, self.compare = implementation, case, compare
        self.mesh = mesh
        self.promote_soft, self.before_call = promote_soft, before_call
        self.examples = 0
        self.searching = True  # until the first raise: later calls are shrink steps
        self.last_raised: Failure | None = None
        self.soft: list[Failure] = []
        self.names = {id(r.update): r.name for r in REGRESSIONS}

    def body(self, update: Update) -> None:
        if self.searching:
            self.examples += 1
        if self.before_call is not None:
            self.before_call(update)
        failure = judge(self.implementation, self.case.prop, update, self.compare, self.mesh)
        if failure is None:
            return
        failure = Failure(
            failure.update,
            failure.actual,
            failure.message,
            failure.diagnosis,
            self.names.get(id(update)),
        )
        if failure.soft and not self.promote_soft:
            self.soft.append(failure)
            return
        self.searching = False
        self.last_raised = failure
        raise AssertionError(failure.message)

    def run(self, test) -> BaseException | None:
        try:
            with with_reporter(lambda _: None):  # the report renders the counterexample itself
                test()
        except Exception as error:
            return error
        return None


def _replay(settings_: settings, seed: int | None) -> str:
    if settings_.derandomize:
        return "derandomised: the same profile draws the same examples on every run"
    return f"seed {seed}: replay with --seed {seed} (check(..., seed={seed}))"


def run(
    implementation: Implementation,
    case: Case,
    settings_: settings,
    *,
    explicit_examples: bool = True,
    buckets: Shapes | None = None,
    constraints: tuple[Constraint, ...] = (),
    compare: str = "bits",
    seed: int | None = None,
    before_call: Callable[[Update], None] | None = None,
    mesh: Mesh | None = None,
) -> Outcome:
    """Check ``case``: "failed" with a shrunk counterexample, "error" for an interpreter
    fault or when Hypothesis stopped for another reason (a health check, a failure that does
    not recur). ``before_call`` sees every update just before the implementation runs on it
    (shrink steps included), so a supervisor knows which update a crash or a hang belongs to.
    With a ``mesh``, every update is placed on it."""
    if not settings_.derandomize and seed is None:
        seed = random.getrandbits(32)
    start = time.perf_counter()

    def search(promote_soft: bool) -> tuple[_Search, BaseException | None]:
        searching = _Search(implementation, case, compare, promote_soft, before_call, mesh)
        test = property_test(
            case,
            implementation,
            explicit_examples=explicit_examples,
            settings_=settings(settings_, report_multiple_bugs=False),
            buckets=buckets,
            constraints=constraints,
            body=searching.body,
            mesh=mesh,
        )
        if seed is not None:
            test = hypothesis_seed(seed)(test)
        return searching, searching.run(test)

    first, error = search(promote_soft=False)
    failure, soft_seen = first.last_raised, first.soft
    if error is None and soft_seen:  # only soft findings: search again to shrink one
        again, error = search(promote_soft=True)
        failure = again.last_raised or min(soft_seen, key=lambda f: f.update.kv_cache_pages.size)
    seconds = time.perf_counter() - start
    replay = _replay(settings_, seed)
    if failure is None:
        if error is None:
            return Outcome(case, "passed", first.examples, seconds)
        return Outcome(
            case, "error", first.examples, seconds, error=_describe(error), replay=replay
        )
    diagnosis = failure.diagnosis
    for other in soft_seen:  # a hard finding keeps the soft ones seen on other examples
        diagnosis += other.diagnosis.without(diagnosis.codes).elsewhere()
    status = "error" if diagnosis.codes == ("interpreter-fault",) else "failed"
    return Outcome(case, status, first.examples, seconds, failure, None, diagnosis, replay)
