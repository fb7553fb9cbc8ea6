"""Run a unit of cases for one implementation, and keep what a report needs.

The runner hands the cases a judge (``steps.Judge``) that judges each call
(``judge.judged_once``, the one entry) into nothing, a hard finding or a soft one:

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

The runner checks a unit of cases at once (``catalog.units``; ``run`` is a unit of one): a
tier's property cases share each example and its one call, every property judging the result.
A search stops at the first example failing any property still searched for, Hypothesis
shrinks it to the smallest example failing any of them, and each property that example fails
gets it as its own counterexample; the same search then runs again for the properties left.
The check's budget (``config.check_seconds``) is the unit's: its cases spend it together.

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
from hypothesis import settings
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.reporting import with_reporter

from oracle.reference import reference_update
from properties._src.calling.implementations import Implementation
from properties._src.cases.catalog import Case, Unit
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig, Search
from properties._src.domain.buckets import Bucket
from properties._src.drawing.reproducible import without_local_constants
from properties._src.judging.coverage import Tally, reached
from properties._src.judging.diagnosis import INTERPRETER_FAULT, NONE, Diagnosis
from properties._src.judging.judge import judged_once
from properties._src.judging.steps import (
    SOFT_CODES,
    Failure,
    Judged,
    Step,
    describe_error,
    judged_by,
    watching_calls,
)
from properties._src.running import budgets
from properties._src.running.profiles import without_explain

__all__ = ["SOFT_CODES", "Failure", "Outcome", "RunConfig", "run", "run_together"]

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
    coverage: dict[str, int] = dataclasses.field(default_factory=dict)  # examples per class


@dataclass
class _Verdict:
    """What one case of a unit has come to so far."""

    examples: int = 0
    failure: Failure | None = None
    error: BaseException | None = None
    soft: list[Failure] = dataclasses.field(default_factory=list)
    seconds: float | None = None  # since the unit started, once its verdict is known
    shrink_stopped: bool = False  # its failure's shrink stopped at config.shrink_seconds
    tally: Tally = dataclasses.field(default_factory=Tally)  # the classes its examples reached


class _Search:
    """A unit's Hypothesis searches: counts examples tried (not shrink steps) for each case
    searched, judges every call by the properties of the cases searched (``targets``), keeps
    each case's findings and the last examples seen."""

    def __init__(self, implementation: Implementation, unit: Unit, config: RunConfig):
        self.implementation, self.unit, self.config = implementation, unit, config
        self.start = time.perf_counter()
        self.clock = budgets.SearchClock(config.check_seconds, self.start)  # the unit's
        self.verdicts = [_Verdict() for _ in unit.cases]
        self.targets: set[int] = set()  # the cases being searched for
        self.promote_soft = False
        self.shapes: set[Bucket] = set()  # called on while searching
        self.spent = self.shrink_stopped = False
        self.stopped_at_failure = False  # config.stop_at_first_failure, and a case failed
        self.searching = True  # until the first raise: later examples are shrink steps
        self.raised: dict[int, Failure] = {}  # the findings of the last call that raised
        self.recent: deque[Any] = deque(maxlen=KEPT_EXAMPLES)
        self.names = {id(r.update): r.name for r in REGRESSIONS}
        self.example: tuple[set[int], set[str]] = (set(), set())  # its cases and classes

    def observe(self, example: Any) -> None:
        self.count_example()
        if self.searching:
            self.clock.spend()
            if not self.promote_soft:
                for index in self.targets:
                    self.verdicts[index].examples += 1
                self.example = (set(self.targets), set())
        self.recent.append(example)

    def count_example(self) -> None:
        """Count the classes the last example's calls reached for the cases it was tried for
        (its calls are judged after it is observed, a sequence's one by one)."""
        cases, reached = self.example
        for index in cases:
            self.verdicts[index].tally.add(reached)
        self.example = (set(), set())

    def judge(self, step: Step, prop: Judged, before: Sequence[Step] = ()) -> np.ndarray:
        """Judge one call by each target's property: soft findings are kept (unless
        promoted), hard ones raised together. The result a sequence goes on with is the call's
        (the one without race detection after an interpreter fault; the oracle's where the
        interpreter faulted either way)."""
        if self.searching:
            self.clock.spend()
            self.shapes.add(Bucket.of(step.update))
            self.example[1].update(reached(step.update))
        props = [
            p for p in judged_by(prop) if self.unit.owner(p.name if p else None) in self.targets
        ]
        actual, failures = judged_once(
            self.implementation, props, step, self.config.compare, self.config.mesh
        )
        hard: dict[int, Failure] = {}
        for p, failure in zip(props, failures, strict=True):
            if failure is None:
                continue
            failure = dataclasses.replace(
                failure, example=self.names.get(id(step.update)), before=tuple(before)
            )
            owner = self.unit.owner(p.name if p else None)
            if failure.soft and not self.promote_soft:
                self.verdicts[owner].soft.append(failure)
            else:
                hard[owner] = failure
        if hard:
            self.searching = False
            self.raised = hard
            raise AssertionError(next(iter(hard.values())).message)
        if actual is None:  # the interpreter faulted either way: go on from the oracle's
            actual = reference_update(*step.update.arrays(), page_size=step.update.page_size)
        return actual

    def watch_failures(self, test) -> None:
        """Stop counting at the first example that fails without a judged call (a relation
        between results): Hypothesis's examples after it are shrink steps. Through the
        ``inner_test`` hook Hypothesis keeps for wrapping each example."""
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

    def run(self, search: Search, seed: int | None) -> BaseException | None:
        """Run one search for the targets; the error it ended with, if any."""
        self.searching, self.raised = True, {}
        shrink = budgets.ShrinkWatch()
        try:
            with (
                with_reporter(lambda _: None),  # the report renders the counterexample itself
                budgets.shrinking_within(self.config.shrink_seconds) as shrink,
            ):
                search.run(seed)
        except budgets.BudgetSpent:
            self.spent = True
        except Exception as error:
            self.searching = False
            return error
        finally:
            self.shrink_stopped = shrink.stopped
        return None

    def settle(self, searches: Sequence[Search], seed: int | None) -> None:
        """Run ``searches`` in order for the targets, until the check's budget is spent. A
        search that fails settles the cases its shrunk example fails (Hypothesis shrinks to
        the smallest example failing any target, and replays it last); the same search runs
        again for the targets left, then the next search for those that passed it."""
        for search in searches:
            self.count_example()
            counted = [(v.examples, v.tally.copy()) for v in self.verdicts]
            while self.targets and not self.spent:
                self.count_example()
                for index in self.targets:  # run again, it draws the same examples first:
                    examples, tally = counted[index]  # each counted once
                    self.verdicts[index].examples, self.verdicts[index].tally = (
                        examples,
                        tally.copy(),
                    )
                error = self.run(search, seed)
                if error is None:
                    break
                found = self.raised
                if not found and isinstance(error, AssertionError):
                    relation = self.reproduced()  # a relation failed: one case alone
                    found = {} if relation is None else {0: relation}
                now = time.perf_counter() - self.start
                for index in found or self.targets:  # nothing found: Hypothesis stopped
                    verdict = self.verdicts[index]
                    verdict.failure = found.get(index)
                    # (a search with soft findings made hard falls back to the smallest seen)
                    verdict.error = None if index in found or self.promote_soft else error
                    verdict.seconds, verdict.shrink_stopped = now, self.shrink_stopped
                self.targets -= set(found or self.targets)
                if found and self.config.stop_at_first_failure:
                    self.stopped_at_failure, self.targets = True, set()

    def spent_on(self, verdict: _Verdict) -> bool:
        """Whether the budget was spent, or the search stopped at another case's failure,
        while the case was still searched for."""
        return (self.spent or self.stopped_at_failure) and verdict.seconds is None

    def notes(self, verdict: _Verdict) -> tuple[str, ...]:
        """The report's lines for the budgets a case's search ran out of."""
        shrink = budgets.shrink_stopped(self.config.shrink_seconds)
        ran_out = ((self.stopped_text(), self.spent_on(verdict)), (shrink, verdict.shrink_stopped))
        return tuple(note for note, out in ran_out if out)

    def stopped_text(self) -> str:
        """Why the search stopped before it had tried all it would, and what it tried."""
        examples = max(v.examples for v in self.verdicts)
        if self.stopped_at_failure:
            return budgets.search_stopped_at_failure(examples, self.shapes)
        return budgets.search_stopped(self.clock.seconds or 0, examples, self.shapes)

    def reproduced(self) -> Failure | None:
        """A failure no call was judged for, found by replaying the last examples seen."""
        case = self.unit.cases[0]
        return next(
            (
                f
                for e in reversed(self.recent)
                if (f := case.reproduce(self.implementation, e, self.config))
            ),
            None,
        )


def _replay(settings_: settings, seed: int | None) -> str:
    if settings_.derandomize:
        return "derandomised: the same profile draws the same examples on every run"
    return f"seed {seed}: replay with --seed {seed} (check(..., seed={seed}))"


def run(implementation: Implementation, case: Case, config: RunConfig) -> Outcome:
    """``run_together`` for one case alone."""
    [outcome] = run_together(implementation, Unit((case,)), config)
    return outcome


def run_together(
    implementation: Implementation, unit: Unit, config: RunConfig
) -> tuple[Outcome, ...]:
    """Check ``unit``'s cases as ``config`` says, on the same calls, an outcome each in the
    unit's order: "failed" with a shrunk counterexample of its own, "error" for an
    interpreter fault or when Hypothesis stopped for another reason (a health check, a
    failure that does not recur), "incomplete" when the budget was spent first.
    ``config.before_call`` sees every update just before the implementation runs on it
    (shrink steps included), so a supervisor knows which update a crash or a hang belongs
    to. Hypothesis draws no constant from local modules meanwhile (``reproducible``), so a
    derandomised run draws the same wherever it runs. The runner judges every call itself
    (``config.judge`` and ``config.observe`` are its own)."""
    settings_ = config.settings_or_profile()
    seed = config.seed
    if not settings_.derandomize and seed is None:
        seed = random.getrandbits(32)
    searching = _Search(implementation, unit, config)
    searches = unit.searches(
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
    for search in searches:
        searching.watch_failures(search.test)
    verdicts = searching.verdicts
    with watching_calls(config.before_call), without_local_constants():
        searching.targets = set(range(len(unit.cases)))
        searching.settle(searches, seed)
        # Cases with only soft findings, not all JAX's faults (the slowest to shrink: each
        # step runs the interpreter twice), while time is left: searched again with them
        # made hard, to shrink one.
        searching.targets = {
            i
            for i, v in enumerate(verdicts)
            if v.failure is None
            and v.error is None
            and v.soft
            and any(f.diagnosis.codes != (INTERPRETER_FAULT,) for f in v.soft)
        }
        searching.promote_soft = True
        if not searching.stopped_at_failure:
            searching.settle(searches, seed)
    searching.count_example()
    seconds = time.perf_counter() - searching.start
    replay = _replay(settings_, seed)
    return tuple(
        dataclasses.replace(
            _outcome(searching, case, verdict, seconds, replay), coverage=verdict.tally.coverage()
        )
        for case, verdict in zip(unit.cases, verdicts, strict=True)
    )


def _outcome(
    searching: _Search, case: Case, verdict: _Verdict, seconds: float, replay: str
) -> Outcome:
    """A case's outcome from its verdict; ``seconds``: the unit's, if the case's own verdict
    came at the end."""
    failure = verdict.failure
    if failure is None and verdict.error is None and verdict.soft:  # soft findings left
        failure = min(verdict.soft, key=lambda f: f.size)  # the smallest example seen
    seconds = seconds if verdict.seconds is None else verdict.seconds
    examples = verdict.examples
    if failure is None:
        if searching.spent_on(verdict):
            error_text = searching.stopped_text()
            return Outcome(case, "incomplete", examples, seconds, error=error_text, replay=replay)
        if verdict.error is None:
            return Outcome(case, "passed", examples, seconds)
        error_text = describe_error(verdict.error)
        return Outcome(case, "error", examples, seconds, error=error_text, replay=replay)
    # Only the shown example's findings: each comes with its example and snippet. A soft
    # finding seen on another example is not carried over (nobody could check it there).
    diagnosis = failure.diagnosis
    status = "error" if diagnosis.codes == (INTERPRETER_FAULT,) else "failed"
    return Outcome(
        case,
        status,
        examples,
        seconds,
        failure,
        None,
        diagnosis,
        replay,
        verdict.shrink_stopped,
        searching.notes(verdict),
    )
