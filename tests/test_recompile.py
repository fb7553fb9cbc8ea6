"""Hypothesis must not pay a compilation per example: one per static shape, at most."""

from __future__ import annotations

import pytest
from hypothesis import settings

from kvcache import kv_cache_update, kv_cache_update_jax
from oracle.contract import Tier, Update
from properties._src.buckets import BUCKETS
from properties._src.checks import MATCHES_ORACLE
from properties._src.implementations import load
from properties._src.property_case import PropertyCase

JITTED = {
    "kvcache:kv_cache_update_jax": kv_cache_update_jax,
    "kvcache:kv_cache_update": kv_cache_update,
}


@pytest.mark.parametrize("spec", list(JITTED))
def test_one_compilation_per_static_shape(spec):
    function = JITTED[spec]
    signatures: set[tuple] = set()
    examples = []

    def observe(update: Update) -> None:
        examples.append(update)
        signatures.add((update.total_update_slices.shape, update.kv_cache_pages.dtype))

    before = function._cache_size()
    PropertyCase(MATCHES_ORACLE, Tier.GENERAL).build(
        load(spec),
        explicit_examples=False,
        observe=observe,
        settings_=settings(max_examples=25, derandomize=True, database=None, deadline=None),
        buckets=BUCKETS[:1],
    )()
    assert len(examples) > len(signatures)
    assert function._cache_size() - before <= len(signatures)
