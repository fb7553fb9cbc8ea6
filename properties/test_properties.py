"""Every property, on every tier it applies to, for every implementation under test."""

from __future__ import annotations

import pytest

from properties.checks import PROPERTIES
from properties.harness import property_test

CASES = [(prop, tier) for prop in PROPERTIES for tier in prop.tiers]


@pytest.mark.parametrize(
    ("prop", "tier"), CASES, ids=[f"{p.name}-{t.name.lower()}" for p, t in CASES]
)
def test_property(implementation, prop, tier):
    property_test(prop, tier, implementation)()
