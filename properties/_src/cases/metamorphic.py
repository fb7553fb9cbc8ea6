"""Metamorphic properties: rewrites of an update that must not change the resulting cache.

They compare an implementation with itself, not with the oracle, so they hold for any
correct implementation and catch defects an oracle shared with the implementation would
hide. Destinations are disjoint in the general tier, so column order never matters.
Results are compared as ``compare`` says (bit for bit by default). Every call's mode is drawn, so a relation also compares
eager calls with calls under ``jax.jit``; on a failure the runner replays the calls and
renders the first whose result differs from the oracle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from oracle.contract import Tier, Update
from properties._src.calling.implementations import Implementation
from properties._src.cases.run_config import PYTEST_RUN, RunConfig
from properties._src.cases.sequence_case import SequenceCase, budget
from properties._src.domain.buckets import Bucket
from properties._src.drawing.shapes import shape_space, within_budget
from properties._src.drawing.strategies import updates
from properties._src.judging.checks import differing_rows, ranges
from properties._src.judging.comparison import canonical
from properties._src.judging.steps import MODES, Step

Column = tuple[int, int, int]
Apply = Callable[..., np.ndarray]  # apply(update, what, on=None): the new cache
Relation = Callable[[Apply, Update, st.DataObject], None]


def real_columns(update: Update) -> list[Column]:
    return [(dst, src, length) for _, dst, src, length in update.columns()]


def with_columns(update: Update, columns: list[Column]) -> Update:
    """``update`` with these real columns; later columns keep whatever they held, as padding."""
    slice_indices = update.slice_indices.copy()
    if columns:
        slice_indices[:, : len(columns)] = np.array(columns, dtype=slice_indices.dtype).T
    count = np.full_like(update.total_update_slices, len(columns))
    return dataclasses.replace(update, slice_indices=slice_indices, total_update_slices=count)


def assert_same_cache(expected: np.ndarray, actual: np.ndarray, what: str) -> None:
    rows = differing_rows(expected, actual)
    assert rows.size == 0, f"{what}: cache rows {ranges(rows)} differ"


def updates_commute_and_combine(apply: Apply, update: Update, data: st.DataObject) -> None:
    """Splitting the columns into two updates, applied in either order, equals the whole."""
    columns = real_columns(update)
    in_first = data.draw(st.lists(st.booleans(), min_size=len(columns), max_size=len(columns)))
    first = with_columns(update, [c for c, take in zip(columns, in_first, strict=True) if take])
    second = with_columns(
        update, [c for c, take in zip(columns, in_first, strict=True) if not take]
    )
    combined = apply(update, "the whole update")
    first_then_second = apply(
        second, "the second part, after the first", apply(first, "the first part")
    )
    second_then_first = apply(
        first, "the first part, after the second", apply(second, "the second part")
    )
    assert_same_cache(combined, first_then_second, "first then second vs combined")
    assert_same_cache(combined, second_then_first, "second then first vs combined")


def permuting_columns_changes_nothing(apply: Apply, update: Update, data: st.DataObject) -> None:
    """The real columns in another order give the same cache."""
    permuted = with_columns(update, data.draw(st.permutations(real_columns(update))))
    assert_same_cache(
        apply(update, "the update"), apply(permuted, "its columns permuted"), "permuted columns"
    )


def splitting_a_slice_changes_nothing(apply: Apply, update: Update, data: st.DataObject) -> None:
    """A slice cut in two columns writes what it wrote whole."""
    columns = real_columns(update)
    splittable = [i for i, (_, _, length) in enumerate(columns) if length >= 2]
    room = min(update.slice_indices.shape[1], np.iinfo(update.total_update_slices.dtype).max)
    assume(splittable and len(columns) < room)  # a column more, counted in the count's dtype
    column = data.draw(st.sampled_from(splittable))
    dst, src, length = columns[column]
    head = data.draw(st.integers(1, length - 1))
    halves = [(dst, src, head), (dst + head, src + head, length - head)]
    split = with_columns(update, columns[:column] + halves + columns[column + 1 :])
    what = f"column {column} split after {head} rows"
    assert_same_cache(apply(update, "the update"), apply(split, what), what)


def splittable(bucket: Bucket) -> bool:
    """Whether an update of ``bucket`` can have a slice to split: two tokens, pages of two
    rows, and room (in the table and in the count's dtype) for a column more than one."""
    room = min(bucket.num_slices, np.iinfo(bucket.count_dtype).max)
    return bucket.num_tokens >= 2 and bucket.page_size >= 2 and room >= 2


def applying_twice_equals_once(apply: Apply, update: Update, data: st.DataObject) -> None:
    """Applying an update to its own result changes nothing more."""
    once = apply(update, "the update")
    assert_same_cache(once, apply(update, "the update again, on its result", once), "applied twice")


@dataclass(frozen=True)
class Metamorphic(SequenceCase):
    """A relation between an implementation's results on rewrites of one drawn update."""

    relation: Relation = updates_commute_and_combine
    holds_one: Callable[[Bucket], bool] | None = None  # the shapes it can rewrite; None: any

    def build(
        self, implementation: Implementation, config: RunConfig = PYTEST_RUN
    ) -> Callable[[], None]:
        judged = config.judge_for(implementation)

        shapes = shape_space() if config.buckets is None else config.buckets
        if self.holds_one is not None:
            shapes = (
                tuple(filter(self.holds_one, shapes))
                if isinstance(shapes, tuple)
                else shapes.filter(self.holds_one)
            )

        # Each rewrite keeps the columns' count: the drawn shape is all the budget needs.
        afforded = within_budget(implementation, shapes, config.constraints)

        @given(update=updates(self.tier, afforded), data=st.data())
        def test(update: Update, data: st.DataObject) -> None:
            steps: list[Step] = []
            if config.observe is not None:
                config.observe(steps)

            def apply(update: Update, what: str, on: np.ndarray | None = None) -> np.ndarray:
                if on is not None:
                    update = dataclasses.replace(update, kv_cache_pages=on)
                label = f"call {len(steps) + 1}, {what}"
                steps.append(Step(update, data.draw(MODES, label=f"mode of {label}"), label))
                return canonical(judged(steps[-1], None, steps[:-1]), config.compare)

            self.relation(apply, update, data)

        test.__name__ = self.id.replace("-", "_")
        # Each example runs the implementation two to five times: half the examples. A slice
        # is split only where one is long enough (``assume``): that filters by design.
        return budget(config, share=2, filters=True)(test)


METAMORPHIC = tuple(
    Metamorphic(name, Tier.GENERAL, relation, holds_one)
    for name, relation, holds_one in (
        ("updates-commute-and-combine", updates_commute_and_combine, None),
        ("permuting-columns-changes-nothing", permuting_columns_changes_nothing, None),
        ("splitting-a-slice-changes-nothing", splitting_a_slice_changes_nothing, splittable),
        ("applying-twice-equals-once", applying_twice_equals_once, None),
    )
)
