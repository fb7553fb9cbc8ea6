"""Every case (a property on a tier) for every implementation under test."""

from __future__ import annotations

import pytest

from properties._src.buckets import BUCKETS
from properties._src.cases import CASES
from properties._src.constraints import fitting
from properties._src.hypothesis_test import property_test


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_property(kvcache_implementation, kvcache_check_options, case):
    constraints = kvcache_check_options["constraints"]
    property_test(
        case,
        kvcache_implementation,
        buckets=fitting(BUCKETS, constraints),
        constraints=constraints,
        compare=kvcache_check_options["compare"],
    )()
