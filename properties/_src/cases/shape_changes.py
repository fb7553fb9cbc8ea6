"""Shapes that change between calls in one process, as a serving engine's do.

A serving engine allocates its cache once and pads each step to one of a few token buckets,
so consecutive calls share the cache and differ in tokens, columns and (between runners) the
count's shape; it also grows or swaps the cache now and then. Each example runs ``CALLS``
updates through one implementation: a bucket's shape; on the same cache, more tokens, more
columns, the other count shape, then all three at once; the same page size with twice the
pages; the first shape again (fewer tokens again, on the first cache). Each result must equal
the oracle's. An implementation that keeps state from one call to the next (a table built on
the first call and keyed by the page size alone, a plan per cache shape with the first call's
token count baked in, a traced value held on to) gets a later call wrong.

Each new static shape is a compilation per calling mode, so the shapes are fixed functions of
the first (never drawn) and only the ``BUCKETS_USED`` buckets with the smallest caches take
part: at most ``BUCKETS_USED * (len(CALLS) - 1)`` new shapes per calling mode and process. They
are chosen among the shapes an interpreted kernel affords (``INTERPRETER_MAX_COLUMNS``, with the
columns added), for every implementation alike: which shapes an example may draw must not
depend on what the calls so far have shown (Hypothesis replays examples, and a draw that changes
is a ``FlakyStrategyDefinition`` error).
Each example is ``len(CALLS)`` calls, so a run takes half the profile's examples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from properties._src.calling.implementations import Implementation
from properties._src.cases.run_config import PYTEST_RUN, RunConfig
from properties._src.cases.sequence_case import SequenceCase, budget, pool
from properties._src.domain.buckets import INTERPRETER_MAX_COLUMNS, Bucket
from properties._src.domain.constraints import fitting
from properties._src.drawing.shapes import for_tier
from properties._src.drawing.strategies import updates
from properties._src.judging.checks import BOTH_TIERS, MATCHES_ORACLE
from properties._src.judging.steps import MODES, Step

BUCKETS_USED = 3
MORE_COLUMNS = 8  # a kernel's block of columns: one more grid step


def smallest(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """The ``BUCKETS_USED`` buckets with the fewest cache bytes, smallest first, among those
    whose columns, with ``MORE_COLUMNS`` added, an interpreted kernel affords (all of them if
    none does)."""

    def cache_bytes(bucket: Bucket) -> int:
        return bucket.cache_rows * bucket.row_bytes

    affordable = [b for b in buckets if b.num_slices + MORE_COLUMNS <= INTERPRETER_MAX_COLUMNS]
    return tuple(sorted(affordable or buckets, key=cache_bytes)[:BUCKETS_USED])


def _more_tokens(bucket: Bucket) -> Bucket:
    return dataclasses.replace(bucket, num_tokens=bucket.num_tokens + bucket.page_size)


def _more_columns(bucket: Bucket) -> Bucket:
    return dataclasses.replace(bucket, num_slices=bucket.num_slices + MORE_COLUMNS)


def _other_count_shape(bucket: Bucket) -> Bucket:
    return dataclasses.replace(bucket, count_shape=() if bucket.count_shape else (1,))


def _twice_the_pages(bucket: Bucket) -> Bucket:
    return dataclasses.replace(bucket, num_pages=2 * bucket.num_pages)


CALLS: tuple[tuple[str, Callable[[Bucket], Bucket]], ...] = (
    ("a shape", lambda bucket: bucket),
    ("more tokens, same cache", _more_tokens),
    ("more columns, same cache", _more_columns),
    ("the other count shape, same cache", _other_count_shape),
    (
        "more tokens and columns and the other count shape, same cache",
        lambda bucket: _other_count_shape(_more_columns(_more_tokens(bucket))),
    ),
    ("twice the pages", _twice_the_pages),
    ("the first shape again", lambda bucket: bucket),
)
"""Each call of an example: what changes, and the shape it is drawn on, from the first."""


def describe(bucket: Bucket) -> str:
    """The dimensions a sequence changes, for a step's label."""
    count = "[1]" if bucket.count_shape else "[]"
    return (
        f"page_size {bucket.page_size}, {bucket.cache_rows} cache rows, "
        f"{bucket.num_tokens} tokens, {bucket.num_slices} columns, count of shape {count}"
    )


@dataclass(frozen=True)
class ShapeChanges(SequenceCase):
    """``len(CALLS)`` calls: a shape, each of tokens, columns and count shape changed on its
    cache and all three at once, twice its pages, the first again."""

    def build(
        self, implementation: Implementation, config: RunConfig = PYTEST_RUN
    ) -> Callable[[], None]:
        judged = config.judge_for(implementation)
        shapes = st.sampled_from(smallest(for_tier(pool(config), self.tier)))

        @given(data=st.data())
        def test(data) -> None:
            first = data.draw(shapes, label="bucket")
            steps: list[Step] = []
            if config.observe is not None:
                config.observe(steps)
            for index, (what, change) in enumerate(CALLS):
                (bucket,) = fitting((change(first),), config.constraints)
                label = f"step {index + 1} of {len(CALLS)}, {what}: {describe(bucket)}"
                update = data.draw(updates(self.tier, (bucket,)), label=label)
                steps.append(Step(update, data.draw(MODES), label))
                judged(steps[-1], MATCHES_ORACLE, steps[:-1])

        test.__name__ = self.id.replace("-", "_")
        return budget(config, share=2)(test)


SHAPE_CHANGES = tuple(ShapeChanges("shapes-change-between-calls", tier) for tier in BOTH_TIERS)
