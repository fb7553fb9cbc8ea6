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
    bfloat16 in scatters, pads and selects."""
    if not jnp.issubdtype(array.dtype, jnp.floating):
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
        "kernel_count_ignored",
        "kernel_page_aligned_one_page_late",
        *CALL_PATTERN_MUTANTS,
    )
)
