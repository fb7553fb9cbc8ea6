"""The kernel on a real TPU, natively compiled by Mosaic (``-m tpu``; skipped elsewhere)."""

from __future__ import annotations

import pytest

from kvcache.kernel import TPU_LANES
from properties.buckets import BUCKETS
from properties.checks import PROPERTIES
from properties.harness import property_test
from properties.implementations import load

LANE_ALIGNED = tuple(b for b in BUCKETS if b.head_dim % TPU_LANES == 0)
CASES = [(prop, tier) for prop in PROPERTIES for tier in prop.tiers]


@pytest.mark.tpu
@pytest.mark.parametrize(
    ("prop", "tier"), CASES, ids=[f"{p.name}-{t.name.lower()}" for p, t in CASES]
)
def test_native_kernel(prop, tier):
    property_test(prop, tier, load("kvcache:kv_cache_update"), buckets=LANE_ALIGNED)()
