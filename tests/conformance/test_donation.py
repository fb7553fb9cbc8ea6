"""The fallback updates the donated cache in place: no copy of it, one compile per shape."""

from __future__ import annotations

import hlo
import jax
import jax.numpy as jnp
import pytest

from kvcache import kv_cache_update_jax, slot_mapping
from kvcache.scatter_probe import scatters_exactly

PAGE_SIZE, PAGES, HEADS, HEAD_DIM = 4, 8, 2, 8
SHAPE = (PAGE_SIZE * PAGES, HEADS, HEAD_DIM)
DTYPES = ["float32", "bfloat16", "int8"]


def _arguments(dtype, tokens=6):
    indices, count = slot_mapping([[5, 2], [7]], [1, 2], [tokens - 1, 1], page_size=PAGE_SIZE)
    new = jnp.arange(tokens * HEADS * HEAD_DIM).reshape(tokens, HEADS, HEAD_DIM).astype(dtype)
    return new, jnp.asarray(indices), jnp.asarray(count)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cache_buffer_is_donated_and_reused(dtype):
    new, indices, count = _arguments(dtype)
    cache = jnp.zeros(SHAPE, dtype)
    pointer = cache.unsafe_buffer_pointer()
    result = kv_cache_update_jax(new, indices, cache, count, page_size=PAGE_SIZE)
    assert cache.is_deleted()
    assert result.unsafe_buffer_pointer() == pointer


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "bfloat16"])
def test_compiled_update_never_copies_the_cache(dtype):
    """Every cache-shaped value is the cache itself or a scatter into it, the loop included."""
    if not scatters_exactly(jax.default_backend(), jnp.dtype(dtype)):
        pytest.skip(f"this XLA widens {dtype} scatters, so the cache is scattered as bits")
    new, indices, count = _arguments(dtype)
    cache = jax.ShapeDtypeStruct(SHAPE, dtype)
    lowered = kv_cache_update_jax.lower(new, indices, cache, count, page_size=PAGE_SIZE)
    text = lowered.compile().as_text()
    assert {op for op, _ in hlo.shaped_ops(text, SHAPE)} >= {"parameter", "scatter"}
    assert hlo.copies(text, SHAPE) == []
    assert "input_output_alias={ {}: (2, {}, may-alias) }" in text


def test_compiles_once_per_shape_bucket():
    kv_cache_update_jax.clear_cache()
    for tokens in (6, 6, 7):  # the same shapes twice, then a new token count
        new, indices, count = _arguments("float32", tokens)
        cache = jnp.zeros(SHAPE, "float32")
        jax.block_until_ready(kv_cache_update_jax(new, indices, cache, count, page_size=PAGE_SIZE))
    assert kv_cache_update_jax._cache_size() == 2
