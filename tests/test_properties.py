"""Every case (a property on a tier) for every implementation under test."""

from __future__ import annotations

import pytest

from properties._src.cases import CASES
from properties._src.hypothesis_test import property_test
from properties._src.shapes import pool_for, shape_space


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_property(kvcache_implementation, case):
    buckets = shape_space(pool=pool_for(kvcache_implementation.name))
    property_test(case, kvcache_implementation, buckets=buckets)()
