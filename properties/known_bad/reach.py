"""Mutants the old ``ci`` pool could not reach (issue 21): each breaks only in a class or a
relation of the contract that no shape of that pool had, and each is a real pattern, cited.

Every one of them passed ``kvcache-check --profile ci`` before the pool covered pairs of
classes and the sequences stepped through token buckets on one cache (docs/quality-gate.md
has the commands and the figures). ``REACH`` names each as ``MODULE:ATTR`` with the case that
kills it most cheaply under ``ci``, which is the one the quality gate runs.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import jax
import jax.numpy as jnp
from jax import lax

from kvcache import kv_cache_update_jax
from kvcache._arguments import slice_count
from kvcache.scatter_probe import scatter
from properties.known_bad.mutants import Columns, _rewriting

VMEM_BUDGET = 16 * 1024 * 1024  # bytes of VMEM scratch (vLLM's and EasyDeL's 16 MiB)
BLOCK = 8  # columns a grid step copies (vLLM's NUM_SLICES_PER_KV_CACHE_UPDATE_BLOCK)
CHUNK = 512  # columns one pass of a chunked loop handles


def _bits(array: jnp.ndarray) -> jnp.ndarray:
    """``array`` as unsigned integers of its width: copies of them keep every bit."""
    return array.view(jnp.dtype(f"uint{8 * array.dtype.itemsize}"))


def page_window_of_tokens(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Reads each column's tokens through a page-sized window (``lax.dynamic_slice`` of
    ``page_size`` rows, moved back to fit the tokens, as the original fallback and EasyDeL's
    ``kv_cache_update_jax`` read them) and scatters the rows its length keeps. With fewer new
    tokens than a page (``0 < T < page_size``: a decode step of fewer requests than a page
    holds) the window does not fit and tracing fails; with no tokens or no columns it returns
    early, having nothing to copy."""
    tokens = new_kv_tokens.shape[0]
    if tokens == 0 or slice_indices.shape[1] == 0:
        return kv_cache_pages
    dst, src, length = jnp.asarray(slice_indices, jnp.int32)
    n = slice_count(total_update_slices)
    lane = jnp.arange(page_size)
    new_bits, cache_bits = _bits(new_kv_tokens), _bits(kv_cache_pages)

    def write(cache, column):
        start = jnp.clip(src[column], 0, tokens - page_size)
        window = lax.dynamic_slice_in_dim(new_bits, start, page_size)
        keep = (column < n) & (lane < length[column])
        rows = jnp.where(keep, dst[column] + lane, cache.shape[0] + lane)
        picked = jnp.take(window, src[column] - start + lane, axis=0, mode="clip")
        return scatter(cache, rows, picked), None

    cache_bits = lax.scan(write, cache_bits, jnp.arange(dst.shape[0]))[0]
    return cache_bits.view(kv_cache_pages.dtype)


def slice_end_in_table_dtype(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Clips each slice at the cache's end, computing the end ``dst + length`` in the slice
    table's own dtype before widening it: JAX (like NumPy under NEP 50) keeps the sum of two
    int8, uint8 or int16 arrays in their dtype, so a slice ending one past the dtype's largest
    value wraps to a negative or zero end and copies nothing. Right for int32 tables."""
    dst, src, length = slice_indices
    end = (dst + length).astype(jnp.int32)
    dst, src = dst.astype(jnp.int32), src.astype(jnp.int32)
    clipped = jnp.minimum(end, kv_cache_pages.shape[0]) - dst
    return kv_cache_update_jax(
        new_kv_tokens,
        jnp.stack([dst, src, clipped]),
        kv_cache_pages,
        total_update_slices,
        page_size=page_size,
    )


def _slot_mapping_when_one_column_per_token(c: Columns) -> Columns:
    """A decode fast path keyed on the shape: with as many columns as tokens, it takes the
    slice table for a per-token slot mapping (vLLM's ``reshape_and_cache_flash`` writes token
    ``i`` to ``slot_mapping[i]``) and copies token ``i`` to column ``i``'s first row. Right for
    a decode step whose every token falls in its own page; any other update of that shape
    (a column of two tokens, sources not in column order) is copied wrong."""
    if c.tokens != c.dst.shape[0]:
        return c
    return replace(c, src=jnp.arange(c.tokens), length=jnp.minimum(c.length, 1))


def _chunks_of_512_unrebased(c: Columns) -> Columns:
    """Works through the columns in chunks of 512 and masks each chunk with the count as it
    is, not rebased to the chunk (``local < n`` for ``chunk * 512 + local < n``): past 512
    columns (engines pad to ``2 * max_num_reqs + T // page_size``, vLLM#19928), padding in a
    later chunk is copied as if real."""
    local = jnp.arange(c.dst.shape[0]) % CHUNK
    return replace(c, length=jnp.where(local < c.n, c.length, 0), n=jnp.int32(c.dst.shape[0]))


decode_fast_path_by_shape = _rewriting(_slot_mapping_when_one_column_per_token)
chunks_of_512_unrebased_count = _rewriting(_chunks_of_512_unrebased)


_PLANS: dict[tuple, int] = {}  # (cache shape, dtype, page size) -> the first call's tokens


def _reads_within(planned: int, c: Columns) -> Columns:
    return replace(c, length=jnp.clip(planned - c.src, 0, c.length))


def plan_per_cache_shape(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Keeps a plan per cache shape, built on the first call with that cache, with that
    call's token count baked in (EasyDeL fixes ``max_num_tokens`` and the update's block in
    the cache's metadata when the cache is created): a later step padded to a larger token
    bucket on the same cache reads no rows past the first step's count."""
    key = (kv_cache_pages.shape, kv_cache_pages.dtype.name, page_size)
    planned = _PLANS.setdefault(key, new_kv_tokens.shape[0])
    return _rewriting(functools.partial(_reads_within, planned))(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


def _last_load_of_each_slot(slots: int, c: Columns) -> Columns:
    """Each column's source becomes that of the last active column of its block that loads
    into the same VMEM slot: what a two-phase kernel (load every column, then store every
    column) stores when slots repeat within a block."""
    column = jnp.arange(c.dst.shape[0])
    active = c.real & (c.length > 0)
    group = (column // BLOCK) * BLOCK + (column % BLOCK) % slots
    groups = -(-c.dst.shape[0] // BLOCK) * BLOCK
    last = jax.ops.segment_max(jnp.where(active, column, -1), group, num_segments=groups)
    loaded = last[group]
    return replace(c, src=jnp.where(active & (loaded >= 0), c.src[loaded], c.src))


def vmem_slots_by_byte_budget(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """A pure-JAX model of a Pallas kernel that copies blocks of 8 columns (vLLM's
    ``NUM_SLICES_PER_KV_CACHE_UPDATE_BLOCK``) through a VMEM scratch of as many pages as a
    16 MiB budget holds (the power of two at most ``16 MiB // page_bytes``, as vLLM's
    ``_get_num_slices_per_kv_cache_update_block`` and EasyDeL's
    ``get_num_slices_per_kv_cache_update_page`` size it), column ``i`` in slot
    ``i % slots``. Once a page passes 2 MiB there are fewer than 8 slots (4 up to 4 MiB): two
    columns of a block share one, and the first is stored with the second's tokens."""
    _, heads, head_dim = kv_cache_pages.shape
    page_bytes = page_size * heads * head_dim * kv_cache_pages.dtype.itemsize
    fitting = max(1, VMEM_BUDGET // page_bytes)
    slots = min(BLOCK, 1 << (fitting.bit_length() - 1))
    return _rewriting(functools.partial(_last_load_of_each_slot, slots))(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


def every_e4m3_as_e4m3fn(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Views every E4M3 cache's tokens as ``float8_e4m3fn`` and converts them to the cache's
    format by value, as vLLM's MiniMax-M3 backend reinterpreted every E4M3 KV cache as
    e4m3fn on ROCm, where it is e4m3fnuz (vllm#45562, fixed by vllm#45720; also vllm#25475).
    The formats encode the same bits differently (e4m3fnuz: half the value, no -0.0), so
    every E4M3 format but e4m3fn is copied wrong."""
    dtype = kv_cache_pages.dtype
    if dtype.name.startswith("float8_e4m3"):
        new_kv_tokens = lax.bitcast_convert_type(new_kv_tokens, jnp.float8_e4m3fn).astype(dtype)
    return kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


REACH: dict[str, str] = {
    f"{__name__}:{name}": case_id
    for name, case_id in (
        ("page_window_of_tokens", "matches-oracle-serving"),
        ("slice_end_in_table_dtype", "matches-oracle-serving"),
        ("decode_fast_path_by_shape", "serving-loop-serving"),
        ("chunks_of_512_unrebased_count", "matches-oracle-serving"),
        ("plan_per_cache_shape", "serving-loop-serving"),
        ("vmem_slots_by_byte_budget", "matches-oracle-general"),
        ("every_e4m3_as_e4m3fn", "matches-oracle-serving"),
    )
}
"""Each mutant, as ``MODULE:ATTR``, and the id of the case that kills it most cheaply under
``ci`` (tests/gate/test_quality.py runs that case alone)."""
