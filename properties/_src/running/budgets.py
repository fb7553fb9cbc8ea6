"""The seconds one check may take: its search (``check_seconds``) and its shrink
(``shrink_seconds``), and what the report says when either ran out.

Hypothesis budgets a search in examples, not in seconds, and has no shrink-time setting, so:

* The search: the runner calls ``SearchClock.spend`` before each example and each call while
  searching; once the check's seconds are spent it raises ``BudgetSpent``, a
  ``BaseException``, which Hypothesis does not take for a failure of the test: it ends the
  search there, shrinking nothing, and the check is ``incomplete``, reported with the examples
  and the shapes it reached. Never a silent pass. The example it stops is marked an overrun
  first: Hypothesis checks every other ending of an example against earlier examples with the
  same draws, and a stateful test stopped before its first draw would read as flaky.
* The shrink: Hypothesis stops shrinking by itself once ``MAX_SHRINKING_SECONDS`` have passed
  since shrinking began (300 s, a constant of ``hypothesis.internal.conjecture.engine`` read
  when shrinking starts), then replays the smallest failing example found so far, as after a
  full shrink. ``shrinking_within`` sets it for one search and reads from Hypothesis's
  statistics (``stopped-because``) whether the shrink stopped there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from hypothesis.control import current_build_context, currently_in_test_context
from hypothesis.internal.conjecture import engine
from hypothesis.internal.conjecture.data import Status
from hypothesis.statistics import collector

from properties._src.domain.buckets import Bucket

SLOW_SHRINK = engine.ExitReason.very_slow_shrinking.value  # its ``stopped-because``
HYPOTHESIS_SHRINK_SECONDS = engine.MAX_SHRINKING_SECONDS  # without a shrink budget


def require_seconds(name: str, seconds: float | None) -> None:
    """A budget is ``None`` (none) or a positive, finite number of seconds."""
    if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} must be a positive number of seconds or None, got {seconds}")


class BudgetSpent(BaseException):
    """The check's seconds are spent: ends its search (not an ``Exception``, so Hypothesis
    neither catches nor shrinks it)."""


@dataclass
class SearchClock:
    """The check's budget, from when the check started."""

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def spend(self) -> None:
        """Raise ``BudgetSpent`` once the budget is spent."""
        if self.seconds is not None and time.perf_counter() - self.started > self.seconds:
            if currently_in_test_context():
                current_build_context().data.status = Status.OVERRUN
            raise BudgetSpent


@dataclass
class ShrinkWatch:
    """Whether the shrink of one search stopped at its budget (set when the search ends)."""

    stopped: bool = False


@contextmanager
def shrinking_within(seconds: float | None) -> Iterator[ShrinkWatch]:
    """Hypothesis's shrinks stop after ``seconds`` (``None``: its own 300) while inside."""
    watch, statistics = ShrinkWatch(), cast(list[dict[str, Any]], [])
    saved = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = seconds or HYPOTHESIS_SHRINK_SECONDS  # type: ignore[assignment]
    try:
        with collector.with_value(statistics.append):  # type: ignore[arg-type]  # typed as None
            yield watch
    finally:
        engine.MAX_SHRINKING_SECONDS = saved
        watch.stopped = any(s.get("stopped-because") == SLOW_SHRINK for s in statistics)


def _shape(bucket: Bucket) -> str:
    return (
        f"  page_size {bucket.page_size}, {bucket.num_pages} pages, [heads, head_dim] "
        f"[{bucket.heads}, {bucket.head_dim}], {bucket.dtype}, {bucket.num_tokens} tokens, "
        f"{bucket.num_slices} columns"
    )


def search_stopped(seconds: float, examples: int, shapes: Iterable[Bucket]) -> str:
    """What an ``incomplete`` check tried: its first line, then the shapes it called on."""
    return _stopped(f"at its {seconds:g} s budget (--check-seconds)", examples, shapes)


def search_stopped_at_failure(examples: int, shapes: Iterable[Bucket]) -> str:
    """``search_stopped`` for a search ended by another case's failure (``RunConfig``'s
    ``stop_at_first_failure``)."""
    return _stopped("at the first failure of a case judged on the same calls", examples, shapes)


def _stopped(why: str, examples: int, shapes: Iterable[Bucket]) -> str:
    reached = sorted(set(shapes), key=lambda b: (b.cache_rows * b.row_bytes, repr(b)))
    return "\n".join(
        [
            f"the search stopped {why} after {examples} examples on {len(reached)} shapes, "
            "before it had tried all it would; the shapes it called the implementation on:",
            *map(_shape, reached),
        ]
    )


def shrink_stopped(seconds: float | None) -> str:
    """The report's line for a shrink that stopped at its budget (``None``: Hypothesis's)."""
    return (
        f"shrinking stopped at its {seconds or HYPOTHESIS_SHRINK_SECONDS:g} s budget (--shrink-seconds): this is the "
        "smallest failing example found by then, not a fully shrunk one"
    )
