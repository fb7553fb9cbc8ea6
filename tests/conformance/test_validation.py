"""``kvcache.validate`` refuses exactly the contract's violations, naming rule and place.

Every rule up to the general tier has a strategy in ``properties._src.drawing.invalid`` that breaks it
alone; the refusal must name that rule and no other, at the broken column or argument.
Valid general-tier updates, garbage padding included, are never refused; asked for the
serving tier, it refuses an update with no real column or no new tokens too. ``update(...,
validate=True)`` refuses before donating the cache, so the caller's array stays usable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

import kvcache
from oracle.contract import RULES, ContractViolation, Tier, Update
from oracle.reference import reference_update
from properties._src.cases.catalog import bits, differing_rows
from properties._src.drawing.invalid import BREAKERS, VALIDATED_RULES, broken
from properties._src.drawing.strategies import updates

GENERAL_RULES = [name for name in VALIDATED_RULES if RULES[name].tier == Tier.GENERAL]


def _arguments(update: Update, to=np.asarray) -> list:
    return [to(array) for array in update.arrays()]


def test_every_validated_rule_has_a_breaker():
    assert set(BREAKERS) == set(VALIDATED_RULES)


@pytest.mark.parametrize("rule", VALIDATED_RULES)
def test_each_violation_is_refused_naming_its_rule_and_place(rule):
    @given(broken(rule))
    def check(case):
        with pytest.raises(ContractViolation) as refused:
            kvcache.validate(*_arguments(case.update), page_size=case.update.page_size)
        assert refused.value.rules == {rule}, str(refused.value)
        places = {v.where for v in refused.value.violations}
        assert places <= case.where, f"reported at {places}, broken at {set(case.where)}"
        assert f"[{rule}]" in str(refused.value)

    check()


@given(updates(Tier.GENERAL))
def test_valid_updates_are_never_refused(update):
    assert kvcache.validate(*_arguments(update), page_size=update.page_size) is None


@given(updates(Tier.SERVING))
def test_serving_updates_are_never_refused_for_the_serving_tier(update):
    assert (
        kvcache.validate(*_arguments(update), page_size=update.page_size, tier=Tier.SERVING) is None
    )


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
    assert kvcache.validate(*_arguments(update), page_size=update.page_size) is None
    with pytest.raises(ContractViolation) as refused:
        kvcache.validate(*_arguments(update), page_size=update.page_size, tier=Tier.SERVING)
    assert refused.value.rules == {"step-nonempty"}, str(refused.value)
    assert {v.where for v in refused.value.violations} == places


@given(updates(Tier.GENERAL))
def test_a_validated_update_matches_the_oracle(update):
    expected = reference_update(*_arguments(update), page_size=update.page_size)
    actual = kvcache.update(
        *_arguments(update, jnp.asarray), page_size=update.page_size, validate=True
    )
    rows = differing_rows(expected, np.asarray(actual))
    assert rows.size == 0, f"cache rows {rows.tolist()} differ from the oracle"


@pytest.mark.parametrize("rule", GENERAL_RULES)
def test_a_refused_update_leaves_the_cache_alive_and_unchanged(rule):
    @given(broken(rule))
    def check(case):
        new, slice_indices, cache, count = _arguments(case.update, jnp.asarray)
        before = bits(case.update.kv_cache_pages).copy()
        with pytest.raises(ContractViolation, match=rule):
            kvcache.update(
                new, slice_indices, cache, count, page_size=case.update.page_size, validate=True
            )
        assert not cache.is_deleted(), "a refused call donated the cache"
        assert np.array_equal(bits(np.asarray(cache)), before), "a refused call changed the cache"

    check()


def test_an_accepted_update_donates_the_cache():
    """The contrast that makes the check above meaningful: without a refusal, the cache goes."""
    cache = jnp.zeros((4, 1, 1))
    kvcache.update(
        jnp.ones((1, 1, 1)),
        jnp.array([[0], [0], [1]], dtype=jnp.int32),
        cache,
        jnp.array([1], dtype=jnp.int32),
        page_size=4,
        validate=True,
    )
    assert cache.is_deleted()


def test_validating_traced_indices_says_to_validate_outside_jit():
    tokens, cache = jnp.zeros((4, 1, 1)), jnp.zeros((8, 1, 1))

    @jax.jit
    def traced(slice_indices):
        kvcache.validate(tokens, slice_indices, cache, jnp.array([1]), page_size=4)

    with pytest.raises(TypeError, match="outside jax.jit"):
        traced(jnp.zeros((3, 2), jnp.int32))
