"""The kernel on a real TPU, natively compiled by Mosaic (``-m tpu``; skipped elsewhere)."""

from __future__ import annotations

import pytest

from kvcache.kernel import TPU_LANES
from properties._src.calling.implementations import load
from properties._src.cases.catalog import CASES
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS

LANE_ALIGNED = tuple(b for b in BUCKETS if b.head_dim % TPU_LANES == 0)


@pytest.mark.tpu
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_native_kernel(case):
    case.build(load("kvcache:kv_cache_update"), RunConfig(buckets=LANE_ALIGNED))()
