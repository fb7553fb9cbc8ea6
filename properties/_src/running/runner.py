"""Run one case for one implementation, and keep what a report needs.

The runner hands the case a judge (``steps.Judge``) that judges each call
(``judge.judged_call``, the one entry) into nothing, a hard finding or a soft one:

* hard: the result is wrong by value, its shape or dtype is, or the implementation's own
  code raised. Hypothesis stops at the first and shrinks it.
* soft: the only differences are NaN payloads or signed zeros (compared by bits), or JAX's
  TPU interpreter itself faulted and, re-run with race detection off, the result is right.
  The search goes on past these, so that they never hide a hard finding. If none turns up,
  the search runs again with the soft finding made hard, so that Hypothesis shrinks it; when
  every soft finding is an interpreter fault (JAX's, and the slowest to shrink: each step runs
  the interpreter twice), the smallest example seen is shown as drawn instead. A hard finding
  is reported with its own example's findings alone: soft ones seen on other examples come
  with no example a person could check, so they are not reported.

A property case's example is one call; a sequence case's is several, each judged in order
(a finding names the steps before it). A failure no call was judged for (a metamorphic
relation between results) is found again among the last examples observed by having the case
replay them against the oracle.

The verdict is "failed" for a wrong result or a raise from the implementation; "error" for
an interpreter fault alone, or when Hypothesis stopped without a counterexample;
"incomplete" when the search spent ``config.check_seconds`` first. A shrink stops after
``config.shrink_seconds`` with the smallest example so far (``budgets``).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import seed as hypothesis_seed
from hypothesis import settings
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.reporting import with_reporter

from oracle.reference import reference_update
from properties._src.calling.implementations import Implementation
from properties._src.cases.catalog import Case
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import Bucket
from properties._src.judging.checks import Property
from properties._src.judging.diagnosis import INTERPRETER_FAULT, NONE, Diagnosis
from properties._src.judging.judge import judged_call
from properties._src.judging.steps import SOFT_CODES, Failure, Step, describe_error, watching_calls
from properties._src.running import budgets
from properties._src.running.profiles import without_explain

__all__ = ["SOFT_CODES", "Failure", "Outcome", "RunConfig", "run"]

KEPT_EXAMPLES = 16  # how far back to look for a failure no call was judged for


@dataclass(frozen=True)
class Outcome:
    """The verdict of one case, with the failure or error behind it."""

    case: Case
    status: str  # "passed", "failed" (with ``failure``), "error" or "incomplete" (``error``)
    examples: int
    seconds: float
    failure: Failure | None = None
    error: str | None = None
    diagnosis: Diagnosis = NONE
    replay: str | None = None
    shrink_stopped: bool = False  # the failure's shrink stopped at config.shrink_seconds
    notes: tuple[str, ...] = ()  # for the report: where a budget ran out


class _Search:
    """One Hypothesis search: counts examples tried (not shrink steps), judges every call,
    keeps the findings and the last examples seen."""

    def __init__(
        self,
        implementation: Implementation,
        case: Case,
        config: RunConfig,
        promote_soft: bool,
        clock: budgets.SearchClock,
    ):
        self.implementation, self.case = implementation, case
        self.config, self.promote_soft, self.clock = config, promote_soft, clock
        self.examples = 0
        self.shapes: set[Bucket] = set()  # called on while searching
        self.spent = self.shrink_stopped = False
        self.searching = True  # until the first raise: later examples are shrink steps
        self.last_raised: Failure | None = None
        self.soft: list[Failure] = []
        self.recent: deque[Any] = deque(maxlen=KEPT_EXAMPLES)
        self.names = {id(r.update): r.name for r in REGRESSIONS}

    def observe(self, example: Any) -> None:
        if self.searching:
            self.clock.spend()
            self.examples += 1
        self.recent.append(example)

    def judge(self, step: Step, prop: Property | None, before: Sequence[Step] = ()) -> np.ndarray:
        """Judge one call: a soft finding is kept (unless promoted), a hard one raised. The
        result a sequence goes on with is the call's (the one without race detection after an
        interpreter fault; the oracle's where the interpreter faulted either way)."""
        if self.searching:
            self.clock.spend()
            self.shapes.add(Bucket.of(step.update))
        actual, failure = judged_call(
            self.implementation, prop, step, self.config.compare, self.config.mesh
        )
        if failure is None and actual is not None:  # a call without a finding has a result
            return actual
        assert failure is not None
        failure = dataclasses.replace(
            failure, example=self.names.get(id(step.update)), before=tuple(before)
        )
        if failure.soft and not self.promote_soft:
            self.soft.append(failure)
            if actual is None:  # the interpreter faulted either way: go on from the oracle's
                actual = reference_update(*step.update.arrays(), page_size=step.update.page_size)
            return actual
        self.searching = False
        self.last_raised = failure
        raise AssertionError(failure.message)

    def watch_failures(self, test) -> None:
        """Stop counting at the first example that fails without a judged call (a relation
        between results): Hypothesis's examples after it are shrink steps. Through the
        ``inner_test`` hook Hypothesis keeps for wrapping each example; a test made of several
        searches (one per shape) fails only through ``judge``, which stops the count itself."""
        handle = getattr(test, "hypothesis", None)
        if handle is None:
            return
        inner = handle.inner_test

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return inner(*args, **kwargs)
            except UnsatisfiedAssumption:
                raise
            except Exception:
                self.searching = False
                raise

        handle.inner_test = counted

    def run(self, test) -> BaseException | None:
        shrink = budgets.ShrinkWatch()
        try:
            with (
                with_reporter(lambda _: None),  # the report renders the counterexample itself
                budgets.shrinking_within(self.config.shrink_seconds) as shrink,
            ):
                test()
        except budgets.BudgetSpent:
            self.spent = True
        except Exception as error:
            self.searching = False
            return error
        finally:
            self.shrink_stopped = shrink.stopped
        return None

    def notes(self) -> tuple[str, ...]:
        """The report's lines for the budgets this search ran out of."""
        config = self.config
        return tuple(
            note
            for note, ran_out in (
                (self.stopped_text(), self.spent),
                (budgets.shrink_stopped(config.shrink_seconds), self.shrink_stopped),
            )
            if ran_out
        )

    def stopped_text(self) -> str:
        """What the search tried before it spent the check's budget."""
        return budgets.search_stopped(self.clock.seconds or 0, self.examples, self.shapes)

    def reproduced(self) -> Failure | None:
        """A failure no call was judged for, found by replaying the last examples seen."""
        return next(
            (
                f
                for e in reversed(self.recent)
                if (f := self.case.reproduce(self.implementation, e, self.config))
            ),
            None,
        )


def _replay(settings_: settings, seed: int | None) -> str:
    if settings_.derandomize:
        return "derandomised: the same profile draws the same examples on every run"
    return f"seed {seed}: replay with --seed {seed} (check(..., seed={seed}))"


def run(implementation: Implementation, case: Case, config: RunConfig) -> Outcome:
    """Check ``case`` as ``config`` says: "failed" with a shrunk counterexample, "error" for an
    interpreter fault or when Hypothesis stopped for another reason (a health check, a failure
    that does not recur). ``config.before_call`` sees every update just before the
    implementation runs on it (shrink steps included), so a supervisor knows which update a
    crash or a hang belongs to. The runner judges every call itself (``config.judge`` and
    ``config.observe`` are its own)."""
    settings_ = config.settings_or_profile()
    seed = config.seed
    if not settings_.derandomize and seed is None:
        seed = random.getrandbits(32)
    start = time.perf_counter()
    clock = budgets.SearchClock(config.check_seconds, start)  # both searches share it

    def search(promote_soft: bool) -> tuple[_Search, BaseException | None]:
        searching = _Search(implementation, case, config, promote_soft, clock)
        test = case.build(
            implementation,
            dataclasses.replace(
                config,
                settings=settings(
                    settings_,
                    report_multiple_bugs=False,
                    phases=without_explain(settings_.phases),  # explanations are never shown
                ),
                observe=searching.observe,
                judge=searching.judge,
            ),
        )
        if seed is not None:
            test = hypothesis_seed(seed)(test)
        searching.watch_failures(test)
        with watching_calls(config.before_call):
            error = searching.run(test)
            if isinstance(error, AssertionError) and searching.last_raised is None:
                searching.last_raised = searching.reproduced()  # a relation failed
        return searching, error

    first, error = search(promote_soft=False)
    shown, failure, soft_seen = first, first.last_raised, first.soft
    if error is None and soft_seen:  # only soft findings
        smallest = min(soft_seen, key=lambda f: f.size)
        if first.spent or all(f.diagnosis.codes == (INTERPRETER_FAULT,) for f in soft_seen):
            failure = smallest  # JAX's fault (not worth shrinking), or no time left
        else:  # search again to shrink one
            shown, error = search(promote_soft=True)
            failure = shown.last_raised or smallest
    seconds = time.perf_counter() - start
    replay = _replay(settings_, seed)
    if failure is None:
        if first.spent:
            status, error_text = "incomplete", first.stopped_text()
            return Outcome(case, status, first.examples, seconds, error=error_text, replay=replay)
        if error is None:
            return Outcome(case, "passed", first.examples, seconds)
        return Outcome(
            case, "error", first.examples, seconds, error=describe_error(error), replay=replay
        )
    # Only the shown example's findings: each comes with its example and snippet. A soft
    # finding seen on another example is not carried over (nobody could check it there).
    diagnosis = failure.diagnosis
    status = "error" if diagnosis.codes == (INTERPRETER_FAULT,) else "failed"
    return Outcome(
        case,
        status,
        first.examples,
        seconds,
        failure,
        None,
        diagnosis,
        replay,
        shown.shrink_stopped,
        shown.notes(),
    )
