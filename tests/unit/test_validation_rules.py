"""``kvcache.validate`` refuses exactly the contract's violations, naming rule and place.

Every rule up to the general tier has a strategy in ``properties._src.drawing.invalid`` that breaks it
alone; the refusal must name that rule and no other, at the broken column or argument.
Valid general-tier updates, garbage padding included, are never refused; asked for the
serving tier, it refuses an update with no real column or no new tokens too. Validation reads
NumPy arrays on the host (no JAX), so these run once, and only their shapes, dtypes and
indices, so the tokens and cache drawn hold zeros; what ``update(..., validate=True)`` does
with JAX's arrays is ``tests/conformance/test_validation.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import kvcache
from oracle.contract import ContractViolation, Tier, Update
from properties._src.drawing.invalid import BREAKERS, VALIDATED_RULES, broken
from properties._src.drawing.strategies import updates


def test_every_validated_rule_has_a_breaker():
    assert set(BREAKERS) == set(VALIDATED_RULES)


@pytest.mark.parametrize("rule", VALIDATED_RULES)
def test_each_violation_is_refused_naming_its_rule_and_place(rule):
    @given(broken(rule, zeros=True))
    def check(case):
        with pytest.raises(ContractViolation) as refused:
            kvcache.validate(*case.update.arrays(), page_size=case.update.page_size)
        assert refused.value.rules == {rule}, str(refused.value)
        places = {v.where for v in refused.value.violations}
        assert places <= case.where, f"reported at {places}, broken at {set(case.where)}"
        assert f"[{rule}]" in str(refused.value)

    check()


@given(updates(Tier.GENERAL, zeros=True))
def test_valid_updates_are_never_refused(update):
    assert kvcache.validate(*update.arrays(), page_size=update.page_size) is None


@given(updates(Tier.SERVING, zeros=True))
def test_serving_updates_are_never_refused_for_the_serving_tier(update):
    assert kvcache.validate(*update.arrays(), page_size=update.page_size, tier=Tier.SERVING) is None


def _empty(tokens: int) -> Update:
    """An update of ``tokens`` new tokens with no real column."""
    return Update(
        np.arange(tokens, dtype=np.float32).reshape(tokens, 1, 1),
        np.zeros((3, 4), np.int32),
        np.zeros((16, 1, 1), np.float32),
        np.array([0], np.int32),
        4,
    )


@pytest.mark.parametrize(
    ("update", "places"),
    [
        (_empty(tokens=8), {"total_update_slices"}),
        (_empty(tokens=0), {"total_update_slices", "new_kv_tokens"}),
    ],
    ids=["no-real-column", "no-new-tokens"],
)
def test_an_empty_update_is_refused_only_for_the_serving_tier(update, places):
    """The general tier takes updates with no real column or no new tokens; serving runners
    never make one (``step-nonempty``)."""
    assert kvcache.validate(*update.arrays(), page_size=update.page_size) is None
    with pytest.raises(ContractViolation) as refused:
        kvcache.validate(*update.arrays(), page_size=update.page_size, tier=Tier.SERVING)
    assert refused.value.rules == {"step-nonempty"}, str(refused.value)
    assert {v.where for v in refused.value.violations} == places
