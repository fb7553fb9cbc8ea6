"""Every case in ``CASES`` for every implementation under test."""

from __future__ import annotations

import pytest

from properties._src.cases import CASES


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_property(kvcache_implementation, case):
    case.build(kvcache_implementation)()
