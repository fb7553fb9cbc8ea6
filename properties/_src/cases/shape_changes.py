"""Shapes that change between calls in one process, as a serving engine's do.

Each example runs three updates through one implementation: a bucket's shape, the same page
size with twice the pages, then the first shape again, so the cache grows and shrinks. Each
result must equal the oracle's. An implementation that keeps state from one call to the next
(a table built on the first call and keyed by the page size alone, a traced value held on to)
gets the later calls wrong. Compilation is what such a sequence costs (a new shape for each
calling mode), so only the ``BUCKETS_USED`` buckets with the smallest caches take part: at
most that many new shapes per calling mode and process.
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
from properties._src.domain.buckets import Bucket
from properties._src.drawing.shapes import affordable, for_tier
from properties._src.drawing.strategies import updates
from properties._src.judging.checks import BOTH_TIERS, MATCHES_ORACLE
from properties._src.judging.steps import MODES, Step

BUCKETS_USED = 3


def smallest(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """The ``BUCKETS_USED`` buckets with the fewest cache bytes, smallest first."""

    def cache_bytes(bucket: Bucket) -> int:
        return bucket.cache_rows * bucket.heads * bucket.head_dim * bucket.numpy_dtype.itemsize

    return tuple(sorted(buckets, key=cache_bytes)[:BUCKETS_USED])


@dataclass(frozen=True)
class ShapeChanges(SequenceCase):
    """Three calls: a shape, twice its pages with the same page size, the first again."""

    def build(
        self, implementation: Implementation, config: RunConfig = PYTEST_RUN
    ) -> Callable[[], None]:
        judged = config.judge_for(implementation)
        shapes = st.sampled_from(smallest(for_tier(pool(config), self.tier))).filter(
            lambda bucket: affordable(implementation, bucket.num_slices)
        )

        @given(data=st.data())
        def test(data) -> None:
            first = data.draw(shapes, label="bucket")
            other = dataclasses.replace(first, num_pages=2 * first.num_pages)
            steps: list[Step] = []
            if config.observe is not None:
                config.observe(steps)
            for index, (bucket, what) in enumerate(
                (
                    (first, "a shape"),
                    (other, "twice the pages"),
                    (first, "the first shape again"),
                )
            ):
                label = (
                    f"step {index + 1} of 3, {what}: page_size {bucket.page_size}, "
                    f"{bucket.cache_rows} cache rows"
                )
                update = data.draw(updates(self.tier, (bucket,)), label=label)
                steps.append(Step(update, data.draw(MODES), label))
                judged(steps[-1], MATCHES_ORACLE, steps[:-1])

        test.__name__ = self.id.replace("-", "_")
        return budget(config)(test)


SHAPE_CHANGES = tuple(ShapeChanges("shapes-change-between-calls", tier) for tier in BOTH_TIERS)
