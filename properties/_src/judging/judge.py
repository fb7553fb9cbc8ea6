"""Judge one call: nothing, a hard finding or a soft one, with a diagnosis of what is wrong.

* hard: the result is wrong by value, its shape or dtype is, or the implementation's own
  code raised.
* soft: the only differences are NaN payloads or signed zeros (compared by bits), or JAX's
  TPU interpreter itself faulted and, re-run with race detection off, the result is right.
* none: the only differences are NaN payloads in a dtype whose NaN payloads the backend's own
  scatter does not keep (``comparison.by_value``): the platform's, not the implementation's.

Every call a case makes is judged by ``judged_call``, the one entry, in the calling mode its
step says: through the runner's judge, which keeps soft findings, or through ``strict``, the
judge of a case's test under pytest, which raises on any; ``replay`` judges a sequence's steps
in order and stops at the first finding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.calling.implementations import Implementation
from properties._src.judging.attribution import attribute
from properties._src.judging.checks import MATCHES_ORACLE, Property
from properties._src.judging.comparison import VALUE_EQUAL, by_value
from properties._src.judging.diagnosis import INTERPRETER_FAULT, explain, single
from properties._src.judging.steps import Failure, Judge, Step, describe_error, watched_call


def _wrong(prop: Property, update: Update, actual: np.ndarray, compare: str) -> str | None:
    """Why ``prop`` rejects ``actual`` compared as ``compare``, or ``None``."""
    try:
        prop.verify(update, actual, compare)
    except Exception as error:
        return str(error) if isinstance(error, AssertionError) else describe_error(error)
    return None


def _result_failure(prop: Property, step: Step, actual: np.ndarray, compare: str) -> Failure | None:
    """The ``Failure`` if ``prop`` rejects ``actual``, with every kind of difference named."""
    update = step.update
    message = _wrong(prop, update, actual, compare)
    if message is None:
        return None
    found = explain(update, actual).without(by_value(compare, update.kv_cache_pages.dtype))
    if compare == "bits" and _wrong(prop, update, actual, "values") is None:
        return _failure(prop, step, actual, message, found.only(VALUE_EQUAL))  # soft
    wrong = found.without(VALUE_EQUAL)
    if not wrong.codes:  # the property's own reason, where the whole cache tells no more
        wrong = single("values", message)
    return _failure(prop, step, actual, message, wrong + found.only(VALUE_EQUAL))


def _failure(prop, step: Step, actual, why: str, diagnosis) -> Failure:
    """A ``Failure`` of ``step`` whose message starts with the step and its calling mode."""
    return Failure(step.update, actual, f"{step}: {why}", diagnosis, mode=step.mode, prop=prop.name)


def judged_call(
    implementation: Implementation,
    prop: Property | None,
    step: Step,
    compare: str = "bits",
    mesh: Mesh | None = None,
) -> tuple[np.ndarray | None, Failure | None]:
    """Run ``step`` (on ``mesh``, if given, in the step's calling mode): the result to go on
    with (``None`` if every try raised) and the ``Failure`` if ``prop`` rejects the result or
    the call raised. With ``prop`` None only a raise is a finding (a metamorphic relation
    compares the results itself)."""
    try:
        actual = watched_call(implementation, step, mesh)
    except Exception as error:
        raised = attribute(error)
        if not raised.interpreter_fault:
            failure = _failure(
                prop or MATCHES_ORACLE,
                step,
                None,
                f"the implementation raised {describe_error(error)}",
                single("raised", f"The implementation raised {raised}."),
            )
            return None, dataclasses.replace(failure, raised=error)
        return _interpreter_fault(
            implementation, prop or MATCHES_ORACLE, step, compare, str(raised), mesh
        )
    return actual, None if prop is None else _result_failure(prop, step, actual, compare)


def strict(
    implementation: Implementation, compare: str = "bits", mesh: Mesh | None = None
) -> Judge:
    """The judge that raises on any finding (``judged_call``), soft ones included, with the
    implementation's own error as the cause when it raised: a case's test under pytest."""

    def judge(step: Step, prop: Property | None, before: Sequence[Step] = ()) -> np.ndarray:
        del before  # a failure's message names the step itself
        actual, failure = judged_call(implementation, prop, step, compare, mesh)
        if failure is not None:
            raise AssertionError(failure.message) from failure.raised
        assert actual is not None  # a call without a finding has a result
        return actual

    return judge


def _interpreter_fault(
    implementation, prop, step: Step, compare, raised: str, mesh
) -> tuple[np.ndarray | None, Failure]:
    """JAX's interpreter faulted: the verdict is what the same call gives without races."""
    fault = f"JAX's TPU interpreter itself raised {raised} (its own code, not the implementation's)"
    headline = "JAX's TPU interpreter faulted (not the implementation)"
    try:
        actual = watched_call(implementation, step, mesh, detect_races=False)
    except Exception as error:
        again = attribute(error)
        sentence = f"{fault}; with race detection off it raises {again} as well."
        return None, _failure(prop, step, None, headline, single(INTERPRETER_FAULT, sentence))
    wrong = _result_failure(prop, step, actual, compare)
    if wrong is None:
        sentence = f"{fault}; with race detection off the result matches the oracle."
        return actual, _failure(prop, step, None, headline, single(INTERPRETER_FAULT, sentence))
    note = single(INTERPRETER_FAULT, f"{fault}; with race detection off the result differs.")
    # The wrong result was seen with race detection off: its snippet runs that way too.
    return actual, dataclasses.replace(wrong, diagnosis=note + wrong.diagnosis, detect_races=False)


def replay(
    implementation: Implementation,
    steps: Sequence[Step],
    prop: Property = MATCHES_ORACLE,
    compare: str = "bits",
    mesh: Mesh | None = None,
) -> Failure | None:
    """Judge ``steps`` in order; the ``Failure`` of the first with a finding (soft ones
    included), with the steps before it, else None."""
    for index, step in enumerate(steps):
        _, failure = judged_call(implementation, prop, step, compare, mesh)
        if failure is not None:
            return dataclasses.replace(failure, before=tuple(steps[:index]))
    return None
