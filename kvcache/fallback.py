"""The pure-JAX update: one scatter of whole rows, with the cache donated.

Written rows are numbered ``0 .. W-1`` in column order (W, the sum of real lengths, is known
only at run time). Each block of ``tokens`` written rows maps back to its column by a binary
search over the running sum of lengths, and is scattered in one ``.at[].set``. A serving-tier
update writes at most ``tokens`` rows, so it takes exactly one block; a general-tier update
with repeated sources may take more, and loops.

The scatter moves unsigned integers of the same width as the data: XLA's CPU scatter on
bfloat16 goes through float32 and quiets NaN payloads (even in rows it does not write), and a
copy must be exact.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Int, Shaped

from kvcache._arguments import check_arguments, slice_count


def _write_block(first_row, cache, new_kv_tokens, slice_indices, ends):
    """Scatter written rows ``first_row .. first_row + tokens - 1`` into the cache."""
    block = max(new_kv_tokens.shape[0], 1)
    cache_rows = cache.shape[0]
    row = first_row + jnp.arange(block, dtype=jnp.int32)
    column = jnp.minimum(jnp.searchsorted(ends, row, side="right"), ends.shape[0] - 1)
    offset = row - (ends[column] - jnp.maximum(slice_indices[2, column], 0))
    src = slice_indices[1, column] + offset
    dst = slice_indices[0, column] + offset
    in_bounds = (
        (row < ends[-1])
        & (src >= 0)
        & (src < new_kv_tokens.shape[0])
        & (dst >= 0)
        & (dst < cache_rows)
    )
    # Rows to skip go to distinct rows past the end, which mode="drop" discards.
    dst = jnp.where(in_bounds, dst, cache_rows + jnp.arange(block, dtype=jnp.int32))
    rows = jnp.take(new_kv_tokens, src, axis=0, mode="clip")
    return cache.at[dst].set(rows, mode="drop", unique_indices=True)


@functools.partial(jax.jit, static_argnames=("page_size",), donate_argnames=("kv_cache_pages",))
def kv_cache_update_jax(
    new_kv_tokens: Shaped[Array, "tokens heads head_dim"],
    slice_indices: Int[Array, "3 num_slices"],
    kv_cache_pages: Shaped[Array, "cache_rows heads head_dim"],
    total_update_slices: Int[Array, 1] | Int[Array, ""],
    *,
    page_size: int = 32,
) -> Shaped[Array, "cache_rows heads head_dim"]:
    """Write new tokens into the paged cache on any backend; returns the cache.

    ``kv_cache_pages`` is donated and updated in place. Correct on every general-tier input;
    rows a malformed column would write outside the cache or read outside the new tokens are
    dropped rather than wrapped or clamped.
    """
    check_arguments(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size)
    dtype = kv_cache_pages.dtype
    bits = jnp.dtype(f"uint{8 * dtype.itemsize}")
    new_kv_tokens = lax.bitcast_convert_type(new_kv_tokens, bits)
    slice_indices = slice_indices.astype(jnp.int32)
    real = jnp.arange(slice_indices.shape[1]) < slice_count(total_update_slices)
    lengths = jnp.where(real, jnp.maximum(slice_indices[2], 0), 0)
    ends = jnp.cumsum(lengths)
    block = max(new_kv_tokens.shape[0], 1)

    def write(state):
        first_row, cache = state
        cache = _write_block(first_row, cache, new_kv_tokens, slice_indices, ends)
        return first_row + block, cache

    state = write((jnp.int32(0), lax.bitcast_convert_type(kv_cache_pages, bits)))
    cache = lax.while_loop(lambda s: s[0] < ends[-1], write, state)[1]
    return lax.bitcast_convert_type(cache, dtype)
