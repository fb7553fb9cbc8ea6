"""Invalid updates: for each rule up to the general tier, a strategy that breaks exactly it.

``broken(rule)`` draws a valid update from ``properties._src.drawing.strategies.updates`` and changes it
just enough to break ``rule`` and nothing else: a column rule changes one real column (two
for ``destinations-disjoint``) and turns any other real column its new destination would
overlap into an empty ``(0, 0, 0)`` column, which the general tier allows. The test asserts
that the contract then reports exactly that rule, at the expected place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from oracle.contract import RULES, Tier, Update
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.drawing.strategies import updates


@dataclass(frozen=True)
class Broken:
    """An update that breaks ``rule``, reported at one of ``where``."""

    update: Update
    rule: str
    where: frozenset[str]


Breaker = Callable[[st.DrawFn, Update], tuple[Update, str | set[str]]]


@dataclass(frozen=True)
class Breaking:
    """How to break one rule, starting from an update in one of ``buckets``."""

    breaker: Breaker
    buckets: tuple[Bucket, ...]


BREAKERS: dict[str, Breaking] = {}


# Breaking a rule needs columns to change and tokens to point at: two of each at least.
BREAKABLE = tuple(b for b in BUCKETS if b.num_slices >= 2 and b.num_tokens >= 2)


def _breaks(rule: str, *, buckets: tuple[Bucket, ...] = BREAKABLE):
    def register(breaker: Breaker) -> Breaker:
        BREAKERS[rule] = Breaking(breaker, buckets)
        return breaker

    return register


def _with(update: Update, **changes) -> Update:
    return dataclasses.replace(update, **changes)


def _rows(update: Update) -> int:
    return update.kv_cache_pages.shape[0]


def _tokens(update: Update) -> int:
    return update.new_kv_tokens.shape[0]


# --- Arguments -------------------------------------------------------------------------


@_breaks("page-size")
def _page_size(draw, u):
    return _with(
        u, page_size=draw(st.sampled_from([0, -1, -u.page_size, 2.0, True, "4", None]))
    ), "page_size"


@_breaks("tokens-rank")
def _tokens_rank(draw, u):
    new = u.new_kv_tokens
    reshaped = draw(st.sampled_from([new.reshape(len(new), -1), new[..., None], new.reshape(-1)]))
    return _with(u, new_kv_tokens=reshaped), "new_kv_tokens"


@_breaks("cache-rank")
def _cache_rank(draw, u):
    cache = u.kv_cache_pages
    reshaped = draw(st.sampled_from([cache.reshape(len(cache), -1), cache[..., None]]))
    return _with(u, kv_cache_pages=reshaped), "kv_cache_pages"


@_breaks("same-layout")
def _same_layout(draw, u):
    new = u.new_kv_tokens
    others = [d for d in ("float32", "bfloat16", "float16", "int8", "int32") if d != new.dtype]
    axis = draw(st.sampled_from([1, 2]))  # one more head, or a longer head_dim
    wider = np.concatenate([new, np.take(new, [0], axis=axis)], axis=axis)
    changed = draw(st.sampled_from(["dtype", "shape"]))
    new = np.zeros(new.shape, draw(st.sampled_from(others))) if changed == "dtype" else wider
    return _with(u, new_kv_tokens=new), "new_kv_tokens"


@_breaks("whole-pages", buckets=tuple(b for b in BREAKABLE if b.page_size > 1))
def _whole_pages(draw, u):
    extra = draw(st.integers(1, u.page_size - 1))
    cache = u.kv_cache_pages
    resized = draw(
        st.sampled_from([np.concatenate([cache, cache[:extra]]), cache[: len(cache) - extra]])
    )
    return _with(u, kv_cache_pages=resized), "kv_cache_pages"


@_breaks("indices-shape")
def _indices_shape(draw, u):
    idx = u.slice_indices
    extra_row = np.concatenate([idx, idx[:1]])
    return _with(
        u, slice_indices=draw(st.sampled_from([extra_row, idx[None], idx.reshape(-1)]))
    ), "slice_indices"


@_breaks("indices-dtype")
def _indices_dtype(draw, u):
    dtype = draw(st.sampled_from(["float32", "float64", "bool"]))
    return _with(u, slice_indices=u.slice_indices.astype(dtype)), "slice_indices"


@_breaks("count-shape")
def _count_shape(draw, u):
    n = u.num_real_slices
    count = draw(st.sampled_from([np.array([n, n]), np.array([[n]]), np.array([], dtype=int)]))
    return _with(u, total_update_slices=count.astype(np.int32)), "total_update_slices"


@_breaks("count-dtype")
def _count_dtype(draw, u):
    dtype = draw(st.sampled_from(["float32", "bool"]))
    return _with(u, total_update_slices=u.total_update_slices.astype(dtype)), "total_update_slices"


# --- General tier ----------------------------------------------------------------------


def _place(idx: np.ndarray, n: int, column: int, value, keep: int | None = None) -> None:
    """Set ``column`` to ``(dst, src, length)``; empty the other real columns it overlaps."""
    idx[:, column] = value
    dst, _, length = value
    for other in range(n):
        start, _, size = (int(v) for v in idx[:, other])
        overlaps = length > 0 and size > 0 and start < dst + length and dst < start + size
        if overlaps and other not in (column, keep):
            idx[:, other] = 0


def _one_column(draw, u: Update, at_least: int = 1) -> tuple[np.ndarray, int, int]:
    """A copy of the indices with at least ``at_least`` real columns, ``n``, and one of them."""
    idx, n = u.slice_indices.astype(np.int64), u.num_real_slices
    if n < at_least:  # make more columns real, as empty ones
        idx[:, n:at_least] = 0
        n = at_least
    return idx, n, draw(st.integers(0, n - 1))


def _count(u: Update, n: int) -> np.ndarray:
    """``n`` as the update's count, in its dtype, or in int32 where that dtype cannot hold it
    (a count out of range, past a narrow dtype's top or below an unsigned one's 0)."""
    dtype = u.total_update_slices.dtype
    info = np.iinfo(dtype)
    fits = int(info.min) <= n <= int(info.max)
    return np.full(u.total_update_slices.shape, n, dtype=dtype if fits else np.int32)


def _columns(u: Update, idx: np.ndarray, n: int) -> Update:
    return _with(u, slice_indices=idx.astype(np.int32), total_update_slices=_count(u, n))


@_breaks("count-range")
def _count_range(draw, u):
    if draw(st.booleans()):
        return _with(
            u, total_update_slices=_count(u, -draw(st.integers(1, 5)))
        ), "total_update_slices"
    idx = u.slice_indices.astype(np.int64)
    idx[:, u.num_real_slices :] = 0  # every column becomes real: make the padding empty columns
    n = idx.shape[1] + draw(st.integers(1, 5))
    return _columns(u, idx, n), "total_update_slices"


@_breaks("starts-nonnegative")
def _starts_nonnegative(draw, u):
    idx, n, column = _one_column(draw, u)
    below = draw(st.integers(1, 2**20))
    if draw(st.booleans()):
        idx[0, column] = -(idx[2, column] + below)  # ends before row 0: overlaps nothing
    else:
        idx[1, column] = -below
    return _columns(u, idx, n), f"column {column}"


@_breaks(
    "length-range",
    buckets=tuple(b for b in BREAKABLE if b.page_size < min(b.num_tokens, b.cache_rows)),
)
def _length_range(draw, u):
    idx, n, column = _one_column(draw, u)
    dst, src, _ = (int(v) for v in idx[:, column])
    if draw(st.booleans()):
        idx[2, column] = -draw(st.integers(1, 2**20))
        return _columns(u, idx, n), f"column {column}"
    length = draw(st.integers(u.page_size + 1, min(_tokens(u), _rows(u))))
    value = (min(dst, _rows(u) - length), min(src, _tokens(u) - length), length)
    _place(idx, n, column, value)
    return _columns(u, idx, n), f"column {column}"


@_breaks("source-in-bounds")
def _source_in_bounds(draw, u):
    idx, n, column = _one_column(draw, u)
    idx[1, column] = _tokens(u) - idx[2, column] + draw(st.integers(1, 2**20))
    return _columns(u, idx, n), f"column {column}"


@_breaks("destination-in-bounds")
def _destination_in_bounds(draw, u):
    idx, n, column = _one_column(draw, u)
    _, src, length = (int(v) for v in idx[:, column])
    _place(idx, n, column, (_rows(u) - length + draw(st.integers(1, 2**20)), src, length))
    return _columns(u, idx, n), f"column {column}"


@_breaks("destinations-disjoint")
def _destinations_disjoint(draw, u):
    idx, n, first = _one_column(draw, u, at_least=2)
    second = draw(st.integers(0, n - 2))
    second += second >= first
    rows, tokens = _rows(u), _tokens(u)
    dst, src, length = (int(v) for v in idx[:, first])
    if length == 0:  # give it a row to overlap
        dst, src, length = min(dst, rows - 1), min(src, tokens - 1), 1
    _place(idx, n, first, (dst, src, length))
    size = draw(st.integers(1, min(u.page_size, tokens, rows)))
    start = draw(st.integers(max(0, dst - size + 1), min(dst + length - 1, rows - size)))
    _place(idx, n, second, (start, draw(st.integers(0, tokens - size)), size), keep=first)
    return _columns(u, idx, n), {f"column {first}", f"column {second}"}


VALIDATED_RULES = tuple(name for name, rule in RULES.items() if rule.tier <= Tier.GENERAL)


@st.composite
def broken(draw, rule: str, *, zeros: bool = False) -> Broken:
    """A valid general-tier update changed to break ``rule``; with ``zeros``, its tokens and
    cache hold zeros (``updates``: for checks of the rules alone, which read only shapes,
    dtypes and indices)."""
    breaking = BREAKERS[rule]
    valid = draw(updates(Tier.GENERAL, breaking.buckets, zeros=zeros))
    update, where = breaking.breaker(draw, valid)
    return Broken(update, rule, frozenset({where} if isinstance(where, str) else where))
