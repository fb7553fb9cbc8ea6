"""``update(..., validate=True)`` with JAX's arrays: an accepted update matches the oracle, a
refused one is refused before the cache is donated, so the caller's array stays usable, and
``validate`` inside ``jax.jit`` says to validate outside. Which updates are refused, and how
the refusal names rule and place, is ``tests/unit/test_validation_rules.py``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import kvcache
from oracle.contract import RULES, ContractViolation, Tier, Update
from oracle.reference import reference_update
from properties._src.cases.catalog import bits, differing_rows
from properties._src.drawing.invalid import VALIDATED_RULES, broken
from properties._src.drawing.strategies import updates

GENERAL_RULES = [name for name in VALIDATED_RULES if RULES[name].tier == Tier.GENERAL]


def _arguments(update: Update, to=np.asarray) -> list:
    return [to(array) for array in update.arrays()]


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
    """What is refused is drawn fully in ``tests/unit/test_validation_rules.py``; here every
    refusal takes the same path past JAX, so a few examples of each rule show it."""

    @settings(max_examples=10)
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
