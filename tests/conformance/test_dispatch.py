"""``kvcache.update`` picks the kernel on a TPU (lane-aligned head_dim) and pure JAX elsewhere."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest

from kvcache import dispatch


@pytest.mark.parametrize(
    ("platform", "head_dim", "dtype", "expected"),
    [
        ("tpu", 128, jnp.float32, "kernel"),
        ("tpu", 64, jnp.float32, "fallback"),
        ("tpu", 128, jnp.bool_, "fallback"),  # JAX 0.10's Mosaic refuses DMAs of bool
        ("cpu", 128, jnp.float32, "fallback"),
        ("gpu", 256, jnp.float32, "fallback"),
    ],
)
def test_update_chooses_by_platform_layout_and_dtype(
    monkeypatch, platform, head_dim, dtype, expected
):
    chosen = []
    monkeypatch.setattr(dispatch, "_platform", lambda _: platform)
    monkeypatch.setattr(dispatch, "kv_cache_update", lambda *a, **k: chosen.append("kernel"))
    monkeypatch.setattr(dispatch, "kv_cache_update_jax", lambda *a, **k: chosen.append("fallback"))
    cache = jnp.zeros((8, 1, head_dim), dtype)
    dispatch.update(
        jnp.zeros((2, 1, head_dim), dtype),
        jnp.zeros((3, 1), jnp.int32),
        cache,
        jnp.array([0]),
        page_size=4,
    )
    assert chosen == [expected]


def test_update_runs_inside_jit_with_the_cache_donated():
    # A traced cache has no devices: reading them raised ConcretizationTypeError under jit.
    cache = jnp.zeros((8, 1, 2))
    update = jax.jit(functools.partial(dispatch.update, page_size=4), donate_argnums=2)
    result = update(
        jnp.ones((2, 1, 2)), jnp.array([[4], [0], [2]], jnp.int32), cache, jnp.array([1])
    )
    assert cache.is_deleted()
    assert jnp.array_equal(result[:, 0, 0], jnp.array([0, 0, 0, 0, 1, 1, 0, 0]))
