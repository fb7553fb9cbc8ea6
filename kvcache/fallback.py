"""The pure-JAX update: scatters of whole rows, in place on the donated cache.

Written rows are numbered ``0 .. W-1`` in column order (W, the sum of real lengths, is known
only at run time). Row ``w`` belongs to the column whose run of rows holds it, found by a
binary search over the running sum of lengths. When sources are packed (every column reads from its
first written row onward, as serving runners lay them out) row ``w`` is new token ``w``, and
the tokens are scattered as they are, in one call. Otherwise blocks of ``tokens`` rows are
gathered and scattered in a loop, since repeated sources can make W exceed ``tokens``; W is
at most ``num_slices * page_size``, which bounds the loop, and a step takes as many of those
rows as ``LOOP_BLOCK_BYTES`` allows (each step passes over the whole cache).

The scatter works on the cache's own dtype. The exception is a float type whose scatter XLA
widens and so quiets NaN payloads even in rows the scatter does not write (``scatter_probe``
says where): there the cache is scattered as unsigned bit patterns of its width. That costs
two passes over the cache (XLA copies on a bitcast-convert), so it is done only where the
probe finds the native scatter inexact.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Int, Shaped

from kvcache._arguments import check_arguments, nothing_to_write, slice_count
from kvcache.scatter_probe import scatter, scatters_exactly
from kvcache.sharded import on_mesh


def _block_targets(first_row, block, ends, offsets, cache_rows, tokens):
    """``(src, dst)`` for written rows ``first_row .. first_row + block - 1``.

    ``offsets[c]`` is column ``c``'s (dst, src) start minus its first written row, so a row's
    target is its column's offset plus the row number: one search and one gather. Rows to
    skip (past W, or reading or writing out of bounds) get distinct destinations past the
    cache's end, which a scatter with ``mode="drop"`` discards.
    """
    row = first_row + jnp.arange(block, dtype=jnp.int32)
    # Unrolled: a loop of log2(num_slices) steps costs a GPU a kernel launch and a host sync a
    # step (the whole update took 3 to 5 times the floor on an H200; unrolled, 1.2 to 1.9).
    found = jnp.searchsorted(ends, row, side="right", method="scan_unrolled")
    column = jnp.minimum(found, ends.shape[0] - 1)
    dst, src = (offsets[column] + row[:, None]).T
    keep = (row < ends[-1]) & (src >= 0) & (src < tokens) & (dst >= 0) & (dst < cache_rows)
    return src, _drop_unless(keep, dst, cache_rows)


def _drop_unless(keep, dst, cache_rows):
    """``dst`` where ``keep``, else distinct rows past the cache's end (dropped by the scatter)."""
    return jnp.where(keep, dst, cache_rows + jnp.arange(dst.shape[0], dtype=jnp.int32))


LOOP_BLOCK_BYTES = 16 * 2**20
"""The most a loop step gathers (unless the new tokens alone are more)."""


def _scatter_dtype(dtype) -> jnp.dtype:
    """The dtype to scatter a ``dtype`` cache as: its unsigned bits where a native scatter is
    not exact (``scatter_probe``)."""
    dtype = jnp.dtype(dtype)
    if scatters_exactly(jax.default_backend(), dtype):
        return dtype
    return jnp.dtype(f"uint{8 * dtype.itemsize}")


@on_mesh
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

    ``kv_cache_pages`` is donated and updated in place. Correct on every general-tier input.
    Input outside the contract never touches rows outside its slices: rows a malformed column
    would write outside the cache or read outside the new tokens are dropped rather than
    wrapped or clamped, and a length over ``page_size`` copies ``page_size`` rows. Use
    ``kvcache.update(..., validate=True)`` to have such input refused instead.
    """
    check_arguments(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size)
    if nothing_to_write(new_kv_tokens, slice_indices):
        return kv_cache_pages
    dtype = kv_cache_pages.dtype
    scatter_dtype = _scatter_dtype(dtype)
    new_kv_tokens = lax.bitcast_convert_type(new_kv_tokens, scatter_dtype)
    slice_indices = slice_indices.astype(jnp.int32)
    real = jnp.arange(slice_indices.shape[1]) < slice_count(total_update_slices)
    # A length outside [0, page_size] breaks the contract; clipping it bounds the loop below.
    lengths = jnp.where(real, jnp.clip(slice_indices[2], 0, page_size), 0)
    ends = jnp.cumsum(lengths)
    starts = ends - lengths
    block = max(new_kv_tokens.shape[0], 1)  # the direct scatter's rows: one per token
    # A loop step writes up to every row the table can (num_slices * page_size), within
    # LOOP_BLOCK_BYTES: a step of only `tokens` rows made a one-token update with 74 columns
    # take 74 steps, each a pass over a 16-million-row cache (6.5 s a call).
    row_bytes = max(math.prod(new_kv_tokens.shape[1:]) * new_kv_tokens.dtype.itemsize, 1)
    most_rows = slice_indices.shape[1] * page_size
    loop_block = max(block, min(most_rows, max(LOOP_BLOCK_BYTES // row_bytes, 1)))
    targets = functools.partial(
        _block_targets,
        ends=ends,
        offsets=(slice_indices[:2] - starts).T,
        cache_rows=kv_cache_pages.shape[0],
        tokens=new_kv_tokens.shape[0],
    )

    # Rows reading the token of their own number need no gather: with packed sources, all rows.
    src, dst = targets(0, block)
    direct = src == jnp.arange(block, dtype=jnp.int32)
    cache = lax.bitcast_convert_type(kv_cache_pages, scatter_dtype)
    cache = scatter(cache, _drop_unless(direct, dst, cache.shape[0]), new_kv_tokens)

    def write(state):
        first_row, cache = state
        src, dst = targets(first_row, loop_block)
        rows = jnp.take(new_kv_tokens, src, axis=0, mode="clip")
        return first_row + loop_block, scatter(cache, dst, rows)

    is_packed = jnp.all((slice_indices[1] == starts) | (lengths == 0))

    def pending(state):
        return (state[0] < ends[-1]) & ~is_packed

    cache = lax.while_loop(pending, write, (jnp.int32(0), cache))[1]
    return lax.bitcast_convert_type(cache, dtype)
