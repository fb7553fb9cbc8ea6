"""Deliberately broken implementations: the harness is only as good as the bugs it finds.

Each mutant is one plausible bug that changes the result on some *valid* input. Most are a
correct update (the pure-JAX fallback, or the Pallas kernel) run on columns a buggy caller
computed, so they share the correct implementation's compiled shapes and stay fast; a few
get the data or the result wrong instead. ``MUTANTS`` names them all as ``MODULE:ATTR``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kvcache import kv_cache_update, kv_cache_update_jax
from kvcache._arguments import slice_count


@dataclass(frozen=True)
class Columns:
    """The columns of one update as a buggy caller sees them (``n`` is the real-column count)."""

    dst: jnp.ndarray
    src: jnp.ndarray
    length: jnp.ndarray
    n: jnp.ndarray
    page_size: int
    cache_rows: int
    tokens: int

    @property
    def real(self) -> jnp.ndarray:
        return jnp.arange(self.dst.shape[0]) < self.n


def _rewriting(rewrite: Callable[[Columns], Columns], update: Callable = kv_cache_update_jax):
    """An implementation that runs the correct ``update`` on the columns ``rewrite`` returns."""

    def implementation(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
    ):
        dst, src, length = jnp.asarray(slice_indices, jnp.int32)
        columns = rewrite(
            Columns(
                dst,
                src,
                length,
                slice_count(total_update_slices),
                page_size,
                kv_cache_pages.shape[0],
                new_kv_tokens.shape[0],
            )
        )
        return update(
            new_kv_tokens,
            jnp.stack([columns.dst, columns.src, columns.length]),
            kv_cache_pages,
            jnp.reshape(columns.n, (1,)),
            page_size=page_size,
        )

    implementation.__doc__ = rewrite.__doc__
    return implementation


def _page_aligned_one_page_late(c: Columns) -> Columns:
    """The in-page offset uses the slice-end formula ``(x - 1) % ps + 1``: offset 0 becomes ps."""
    page = c.dst // c.page_size
    return replace(c, dst=page * c.page_size + (c.dst - 1) % c.page_size + 1)


def _last_row_before_page_end_dropped(c: Columns) -> Columns:
    """Clips each slice to ``[dst, page_end - 1)``: a slice ending on a page boundary loses a row."""
    page_end = (c.dst // c.page_size + 1) * c.page_size
    return replace(c, length=jnp.minimum(c.length, page_end - 1 - c.dst))


def _full_page_short(c: Columns) -> Columns:
    """A whole-page slice copies ``page_size - 1`` rows (a ``<`` for ``<=``)."""
    return replace(c, length=jnp.where(c.length == c.page_size, c.page_size - 1, c.length))


def _window_clamped_at_cache_end(c: Columns) -> Columns:
    """A page-sized window that would pass the cache's end is moved back to fit (the seed's bug)."""
    return replace(c, dst=jnp.minimum(c.dst, c.cache_rows - c.page_size))


def _source_window_clamped(c: Columns) -> Columns:
    """The page-sized read window is clamped to the new tokens instead of the write window."""
    return replace(c, src=jnp.minimum(c.src, max(c.tokens - c.page_size, 0)))


def _sources_assumed_packed(c: Columns) -> Columns:
    """Ignores the new-token start: sources taken as the running sum of lengths."""
    lengths = jnp.where(c.real, c.length, 0)
    return replace(c, src=jnp.cumsum(lengths) - lengths)


def _empty_slice_writes_a_row(c: Columns) -> Columns:
    """A zero-length slice copies one row (a do-while copy loop)."""
    return replace(c, length=jnp.maximum(c.length, 1))


def _starts_swapped(c: Columns) -> Columns:
    """Reads ``slice_indices`` rows as (new-token start, cache start, length)."""
    return replace(c, dst=c.src, src=c.dst)


def _count_ignored(c: Columns) -> Columns:
    """Writes every column, padding included, regardless of ``n``."""
    return replace(c, n=jnp.int32(c.dst.shape[0]))


def _count_minus_one(c: Columns) -> Columns:
    """Treats ``n`` as the index of the last real column: the last one is skipped."""
    return replace(c, n=jnp.maximum(c.n - 1, 0))


def _count_plus_one(c: Columns) -> Columns:
    """Treats ``n`` as the index of the last real column: one padding column is copied."""
    return replace(c, n=jnp.minimum(c.n + 1, c.dst.shape[0]))


def _offset_packed_in_8_bits(c: Columns) -> Columns:
    """Keeps the in-page offset in 8 bits of a packed (page, offset) key: wrong past 255."""
    key = (c.dst // c.page_size) << 8 | (c.dst % c.page_size) & 0xFF
    return replace(c, dst=(key >> 8) * c.page_size + (key & 0xFF))


def _rows_through_float32(c: Columns) -> Columns:
    """Computes the row ``page * page_size + offset`` in float32: odd rows past 2^24 round."""
    page = jnp.floor(c.dst / c.page_size)  # int32 / int is float32 in JAX
    row = page * jnp.float32(c.page_size) + (c.dst % c.page_size).astype(jnp.float32)
    return replace(c, dst=row.astype(jnp.int32))


def _rows_in_int16(c: Columns) -> Columns:
    """Holds cache rows in int16: past row 32767 they wrap negative (and are dropped)."""
    return replace(c, dst=c.dst.astype(jnp.int16).astype(jnp.int32))


def _rows_in_uint16(c: Columns) -> Columns:
    """Holds cache rows in a 16-bit slot id: past row 65535 they wrap to the cache's start."""
    return replace(c, dst=c.dst & 0xFFFF)


def _offset_by_power_of_two_mask(c: Columns) -> Columns:
    """Splits a row with ``>> log2(page_size)`` and ``& (page_size - 1)``: right only for
    powers of two."""
    shift = c.page_size.bit_length() - 1
    return replace(c, dst=(c.dst >> shift) * c.page_size + (c.dst & (c.page_size - 1)))


def _count_in_a_byte(c: Columns) -> Columns:
    """Keeps ``n`` in a uint8: 256 real columns or more wrap."""
    return replace(c, n=c.n.astype(jnp.uint8).astype(jnp.int32))


def _column_ids_in_a_byte(c: Columns) -> Columns:
    """Looks columns up by an 8-bit id: column 256 and on read column ``c % 256``."""
    ids = jnp.arange(c.dst.shape[0]) & 0xFF
    return replace(c, dst=c.dst[ids], src=c.src[ids], length=c.length[ids])


def _count_from_first_padding(c: Columns) -> Columns:
    """Takes ``n`` as the first padding column's index via ``argmax``: 0 when every column is
    real."""
    return replace(c, n=jnp.argmax(jnp.arange(c.dst.shape[0]) >= c.n).astype(jnp.int32))


def _one_grid_step_of_8(c: Columns) -> Columns:
    """Launches one grid step of 8 columns: real columns past the 8th are never copied."""
    return replace(c, n=jnp.minimum(c.n, 8))


def _rows_buffer_of_tokens(c: Columns) -> Columns:
    """Gathers the written rows into a buffer of ``tokens`` rows: past it (repeated sources
    writing more rows than there are tokens) nothing is copied."""
    lengths = jnp.where(c.real, c.length, 0)
    starts = jnp.cumsum(lengths) - lengths
    return replace(c, length=jnp.clip(c.tokens - starts, 0, c.length))


def _source_bound_strict(c: Columns) -> Columns:
    """Checks ``src + length < tokens``: a slice ending on the last new token is skipped."""
    return replace(c, length=jnp.where(c.src + c.length < c.tokens, c.length, 0))


def _destination_bound_strict(c: Columns) -> Columns:
    """Checks ``dst + length < cache_rows``: a slice ending on the cache's last row is skipped."""
    return replace(c, length=jnp.where(c.dst + c.length < c.cache_rows, c.length, 0))


def _padding_by_zero_destination(c: Columns) -> Columns:
    """Takes a column writing to row 0 for a ``(0, 0, 0)`` padding column and skips it."""
    return replace(c, length=jnp.where(c.dst == 0, 0, c.length))


def _last_page_never_written(c: Columns) -> Columns:
    """Bounds pages with ``page < num_pages - 1``: nothing is written to the last page."""
    last_page = c.cache_rows // c.page_size - 1
    return replace(c, length=jnp.where(c.dst // c.page_size < last_page, c.length, 0))


def _source_in_11_bits(c: Columns) -> Columns:
    """Packs the new-token start in 11 bits: sources past token 2047 wrap."""
    return replace(c, src=c.src & 0x7FF)


def _length_in_a_byte(c: Columns) -> Columns:
    """Keeps lengths in a uint8: a 256-row slice copies nothing."""
    return replace(c, length=c.length & 0xFF)


def _longest_slice_sized(c: Columns) -> Columns:
    """Sizes its copy window by the longest real slice (``jnp.max``): no columns, no maximum."""
    longest = jnp.max(jnp.where(c.real, c.length, 0))
    return replace(c, length=jnp.minimum(c.length, longest))


def _padding_in_last_block(c: Columns) -> Columns:
    """Copies whole blocks of 4 columns: padding that shares the last block is copied too
    (the original kernel's defect, in the last grid step)."""
    return replace(c, n=jnp.minimum(-(-c.n // 4) * 4, c.dst.shape[0]))


page_aligned_one_page_late = _rewriting(_page_aligned_one_page_late)
last_row_before_page_end_dropped = _rewriting(_last_row_before_page_end_dropped)
full_page_short = _rewriting(_full_page_short)
window_clamped_at_cache_end = _rewriting(_window_clamped_at_cache_end)
source_window_clamped = _rewriting(_source_window_clamped)
sources_assumed_packed = _rewriting(_sources_assumed_packed)
empty_slice_writes_a_row = _rewriting(_empty_slice_writes_a_row)
starts_swapped = _rewriting(_starts_swapped)
count_ignored = _rewriting(_count_ignored)
count_minus_one = _rewriting(_count_minus_one)
count_plus_one = _rewriting(_count_plus_one)
offset_packed_in_8_bits = _rewriting(_offset_packed_in_8_bits)
rows_through_float32 = _rewriting(_rows_through_float32)
rows_in_int16 = _rewriting(_rows_in_int16)
rows_in_uint16 = _rewriting(_rows_in_uint16)
offset_by_power_of_two_mask = _rewriting(_offset_by_power_of_two_mask)
count_in_a_byte = _rewriting(_count_in_a_byte)
column_ids_in_a_byte = _rewriting(_column_ids_in_a_byte)
count_from_first_padding = _rewriting(_count_from_first_padding)
one_grid_step_of_8 = _rewriting(_one_grid_step_of_8)
rows_buffer_of_tokens = _rewriting(_rows_buffer_of_tokens)
source_bound_strict = _rewriting(_source_bound_strict)
destination_bound_strict = _rewriting(_destination_bound_strict)
padding_by_zero_destination = _rewriting(_padding_by_zero_destination)
last_page_never_written = _rewriting(_last_page_never_written)
source_in_11_bits = _rewriting(_source_in_11_bits)
length_in_a_byte = _rewriting(_length_in_a_byte)
longest_slice_sized = _rewriting(_longest_slice_sized)
padding_in_last_block = _rewriting(_padding_in_last_block)
kernel_count_ignored = _rewriting(_count_ignored, kv_cache_update)
kernel_page_aligned_one_page_late = _rewriting(_page_aligned_one_page_late, kv_cache_update)


def nan_canonicalised(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Copies the new tokens through float32 first (eagerly): NaN payloads do not survive."""
    if jnp.issubdtype(new_kv_tokens.dtype, jnp.floating):
        new_kv_tokens = new_kv_tokens.astype(jnp.float32).astype(new_kv_tokens.dtype)
    return kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


def quiet_nans(array: jnp.ndarray) -> jnp.ndarray:
    """``array`` with the quiet bit set in every NaN, as XLA:CPU in jaxlib 0.10 does to
    bfloat16 in scatters, pads and selects. (float8_e8m0fnu has no mantissa, and one NaN.)"""
    if not jnp.issubdtype(array.dtype, jnp.floating) or jnp.finfo(array.dtype).nmant == 0:
        return array
    unsigned = jnp.dtype(f"uint{8 * array.dtype.itemsize}")
    quiet_bit = 1 << (jnp.finfo(array.dtype).nmant - 1)
    raw = lax.bitcast_convert_type(array, unsigned)
    quieted = jnp.where(jnp.isnan(array), raw | jnp.asarray(quiet_bit, unsigned), raw)
    return lax.bitcast_convert_type(quieted, array.dtype)


def nan_quieted_everywhere(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Quiets every NaN of the cache, in rows it does not write too (a widening pass)."""
    return kv_cache_update_jax(
        new_kv_tokens,
        slice_indices,
        quiet_nans(kv_cache_pages),
        total_update_slices,
        page_size=page_size,
    )


def result_promoted(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Returns the cache promoted to at least float32 (an accumulator never cast back)."""
    result = kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )
    return result.astype(jnp.promote_types(result.dtype, jnp.float32))


# --- Call patterns (issue 11): state kept between calls, the count read on the host, donation.
# Each is right on some calls and wrong on others: only under jax.jit, only eagerly, or only
# after an earlier call with another shape.

_PAGE_STARTS: dict[int, np.ndarray] = {}  # page size -> the first cache's page start rows


def _page_table_keyed_by_page_size(c: Columns) -> Columns:
    """Maps each destination through a table of page start rows built on the first call for
    each page size and kept after: with a larger cache later, pages past the first cache's
    end land in its last page (a gather clamps its index)."""
    starts = _PAGE_STARTS.setdefault(
        c.page_size, np.arange(c.cache_rows // c.page_size, dtype=np.int32) * c.page_size
    )
    return replace(c, dst=jnp.asarray(starts)[c.dst // c.page_size] + c.dst % c.page_size)


page_table_keyed_by_page_size = _rewriting(_page_table_keyed_by_page_size)


def count_read_on_host(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Reads the count on the host (``int(total_update_slices[0])``) to drop the padding
    columns (keeping one, so the array keeps a column) before the update: right eagerly, an
    error under jax.jit, where the count is traced."""
    n = int(jnp.reshape(total_update_slices, (-1,))[0])
    return kv_cache_update_jax(
        new_kv_tokens,
        slice_indices[:, : max(n, 1)],
        kv_cache_pages,
        jnp.full((1,), n, jnp.int32),
        page_size=page_size,
    )


def count_assumed_full_when_traced(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Sizes its work by the count when it is concrete and, when it is traced (under
    jax.jit), by the column count, as an upper bound it never masks: under jit the padding
    columns are copied too."""
    try:
        n = int(jnp.reshape(total_update_slices, (-1,))[0])
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError):
        n = slice_indices.shape[1]
    return kv_cache_update_jax(
        new_kv_tokens,
        slice_indices,
        kv_cache_pages,
        jnp.full((1,), n, jnp.int32),
        page_size=page_size,
    )


def cache_read_after_donation(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Returns the cache it was given when no column is real, choosing after the update
    (``jnp.where(n == 0, cache, result)``): the update donated that cache, so an eager call
    reads a deleted array. Under jax.jit the inner donation is ignored and it is right."""
    result = kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )
    return jnp.where(slice_count(total_update_slices) == 0, kv_cache_pages, result)


_KEPT_CACHES: dict[tuple, jnp.ndarray] = {}  # (shape, dtype) -> the cache it keeps


def cache_kept_between_calls(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Keeps the result as its own cache for the next call of the same shape (an engine's
    persistent buffer) and writes into that, ignoring the cache passed in after the first."""
    key = (kv_cache_pages.shape, str(kv_cache_pages.dtype))
    cache = _KEPT_CACHES.get(key, kv_cache_pages)
    result = kv_cache_update_jax(
        new_kv_tokens, slice_indices, cache, total_update_slices, page_size=page_size
    )
    _KEPT_CACHES[key] = result
    return result


CALL_PATTERN_MUTANTS = (
    "page_table_keyed_by_page_size",
    "count_read_on_host",
    "count_assumed_full_when_traced",
    "cache_read_after_donation",
    "cache_kept_between_calls",
)


def _covering(select: Callable[[int, int], tuple[int, int]]):
    """An implementation that writes only the first heads and lanes ``select(heads, head_dim)``
    returns (a tiling that drops its remainder): the rest of each written row keeps its bits."""

    def implementation(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
    ):
        heads, lanes = select(*kv_cache_pages.shape[1:])
        original = jnp.array(kv_cache_pages, copy=True)  # the update consumes the cache
        result = kv_cache_update_jax(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        )
        covered = jnp.zeros(result.shape[1:], bool).at[:heads, :lanes].set(True)
        return jnp.where(covered, result, original)

    implementation.__doc__ = select.__doc__
    return implementation


def _head_pairs(heads: int, head_dim: int) -> tuple[int, int]:
    """Copies heads in (K, V) pairs: with an odd head count the last head is never written."""
    return heads - heads % 2, head_dim


def _heads_up_to_32(heads: int, head_dim: int) -> tuple[int, int]:
    """Unrolls its head loop for at most 32 heads: heads 32 and on are never written."""
    return min(heads, 32), head_dim


def _lane_tiles_of_128(heads: int, head_dim: int) -> tuple[int, int]:
    """Tiles head_dim in 128 lanes once it is wider than a tile, dropping the remainder
    (head_dim 192 copies 128 lanes)."""
    return heads, head_dim - head_dim % 128 if head_dim > 128 else head_dim


head_pairs = _covering(_head_pairs)
heads_up_to_32 = _covering(_heads_up_to_32)
lane_tiles_of_128 = _covering(_lane_tiles_of_128)


def _staged(stage: Callable[[jnp.dtype], jnp.dtype | None]):
    """An implementation that converts tokens and cache to ``stage(dtype)`` by value (where it
    is not None), updates there and converts the result back."""

    def implementation(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
    ):
        dtype = kv_cache_pages.dtype
        through = stage(dtype)
        if through is None:
            through = dtype
        result = kv_cache_update_jax(
            new_kv_tokens.astype(through),
            slice_indices,
            kv_cache_pages.astype(through),
            total_update_slices,
            page_size=page_size,
        )
        return result.astype(dtype)

    implementation.__doc__ = stage.__doc__
    return implementation


def _integers_through_float32(dtype):
    """Stages integer caches through float32: int32 and uint32 values past 2^24 round."""
    return jnp.float32 if jnp.issubdtype(dtype, jnp.integer) else None


def _one_byte_floats_as_int8(dtype):
    """Copies one-byte float caches as int8 by value, not by bits: float8 values truncate."""
    return jnp.int8 if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize == 1 else None


def _two_byte_integers_as_float16(dtype):
    """Copies two-byte integer caches as float16: values past 2048 round."""
    return jnp.float16 if jnp.issubdtype(dtype, jnp.integer) and dtype.itemsize == 2 else None


integers_through_float32 = _staged(_integers_through_float32)
one_byte_floats_as_int8 = _staged(_one_byte_floats_as_int8)
two_byte_integers_as_float16 = _staged(_two_byte_integers_as_float16)


def page_windows_gathered(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Gathers a page-sized window of rows per column (clipped into the tokens) and scatters
    the rows each length keeps, as bit patterns: with no new tokens there is nothing to clip
    into, and the gather fails."""
    dst, src, length = jnp.asarray(slice_indices, jnp.int32)
    lane = jnp.arange(page_size)
    real = (jnp.arange(dst.shape[0]) < slice_count(total_update_slices))[:, None]
    keep = (real & (lane < length[:, None])).reshape(-1)
    sources = jnp.clip((src[:, None] + lane).reshape(-1), 0, new_kv_tokens.shape[0] - 1)
    targets = jnp.where(keep, (dst[:, None] + lane).reshape(-1), kv_cache_pages.shape[0])
    bits = jnp.dtype(f"uint{8 * kv_cache_pages.dtype.itemsize}")
    rows = jnp.take(new_kv_tokens.view(bits), sources, axis=0)
    return kv_cache_pages.view(bits).at[targets].set(rows, mode="drop").view(kv_cache_pages.dtype)


MUTANTS: tuple[str, ...] = tuple(
    f"{__name__}:{name}"
    for name in (
        "page_aligned_one_page_late",
        "last_row_before_page_end_dropped",
        "full_page_short",
        "window_clamped_at_cache_end",
        "source_window_clamped",
        "sources_assumed_packed",
        "empty_slice_writes_a_row",
        "starts_swapped",
        "count_ignored",
        "count_minus_one",
        "count_plus_one",
        "padding_in_last_block",
        "nan_canonicalised",
        "nan_quieted_everywhere",
        "result_promoted",
        "offset_packed_in_8_bits",
        "rows_through_float32",
        "rows_in_int16",
        "rows_in_uint16",
        "offset_by_power_of_two_mask",
        "count_in_a_byte",
        "column_ids_in_a_byte",
        "count_from_first_padding",
        "one_grid_step_of_8",
        "rows_buffer_of_tokens",
        "source_bound_strict",
        "destination_bound_strict",
        "padding_by_zero_destination",
        "last_page_never_written",
        "source_in_11_bits",
        "length_in_a_byte",
        "longest_slice_sized",
        "head_pairs",
        "heads_up_to_32",
        "lane_tiles_of_128",
        "integers_through_float32",
        "one_byte_floats_as_int8",
        "two_byte_integers_as_float16",
        "page_windows_gathered",
        "kernel_count_ignored",
        "kernel_page_aligned_one_page_late",
        *CALL_PATTERN_MUTANTS,
    )
)
