"""What a run reached: for each class of each dimension and relation (``classes``), how many
examples had a shape in it.

Every judged call notes its shape's classes as Hypothesis events (``note``), so Hypothesis's
statistics (``--hypothesis-show-statistics``) and observability output show them for any run;
the runner counts them per case (``Tally``) into ``Outcome.coverage`` and ``CaseResult.coverage``
(the JSON's ``"coverage"``): every class by its label, with 0 for one no example reached.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from hypothesis import currently_in_test_context, event

from oracle.contract import Update
from properties._src.domain.buckets import Bucket
from properties._src.domain.classes import every_label, labels_of


def note(update: Update) -> None:
    """Record ``update``'s classes as Hypothesis events of the running example (outside a
    Hypothesis test, as when a failure is replayed, there is none)."""
    if currently_in_test_context():
        for label in labels_of(Bucket.of(update)):
            event(label)


class Tally:
    """Examples per class, an example at a time: the classes of every call an example made (a
    sequence's steps) count once for it."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, example: Iterable[str]) -> None:
        """One example, by the classes its calls reached."""
        self.counts.update(set(example))

    def copy(self) -> Tally:
        copied = Tally()
        copied.counts = self.counts.copy()
        return copied

    def coverage(self) -> dict[str, int]:
        """Every class, in ``classes`` order, with the examples that reached it."""
        return {label: self.counts[label] for label in every_label()}


def reached(update: Update) -> tuple[str, ...]:
    """The classes of ``update``'s shape, one per dimension."""
    return labels_of(Bucket.of(update))


def gaps(coverages: Iterable[Mapping[str, int]]) -> list[str]:
    """The classes none of ``coverages`` reached, in order (none if nothing was counted: a
    result read from an older report, or a case that crashed before its first example)."""
    counted = [c for c in coverages if c]
    return [label for label in every_label() if counted and not any(c.get(label) for c in counted)]
