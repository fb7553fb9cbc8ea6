"""Hypothesis must not pay a compilation per example: one per static shape and calling
mode, at most."""

from __future__ import annotations

import pytest
from hypothesis import settings

from kvcache import kv_cache_update, kv_cache_update_jax
from oracle.contract import Tier
from properties._src.calling.implementations import CALL_MODES, EAGER, JIT_DONATED, jitted, load
from properties._src.cases.property_case import PropertyCase
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS
from properties._src.judging.checks import MATCHES_ORACLE
from properties._src.judging.steps import Step

JITTED = {
    "kvcache:kv_cache_update_jax": kv_cache_update_jax,
    "kvcache:kv_cache_update": kv_cache_update,
}


@pytest.mark.parametrize("spec", list(JITTED))
def test_one_compilation_per_static_shape_and_calling_mode(spec):
    implementation = load(spec)
    signatures: dict[str, set[tuple]] = {mode: set() for mode in CALL_MODES}
    examples = []

    def observe(step: Step) -> None:
        update = step.update
        examples.append(update)
        signature = (update.total_update_slices.shape, update.kv_cache_pages.dtype)
        signatures[step.mode].add(signature)

    # Eager calls compile the implementation's own jit; calls under jit, the harness's wrapper.
    programs = {EAGER: JITTED[spec], JIT_DONATED: jitted(implementation)}
    before = {mode: program._cache_size() for mode, program in programs.items()}
    PropertyCase(MATCHES_ORACLE, Tier.GENERAL).build(
        implementation,
        RunConfig(
            explicit_examples=False,
            observe=observe,
            settings=settings(max_examples=25, derandomize=True, database=None, deadline=None),
            buckets=BUCKETS[:1],
        ),
    )()
    assert len(examples) > sum(len(s) for s in signatures.values())
    for mode, program in programs.items():
        assert signatures[mode], f"no example was called {mode}"
        assert program._cache_size() - before[mode] <= len(signatures[mode]), mode
