"""Hypothesis strategies for paged KV-cache updates.

``updates(tier)`` draws a bucket (static shape), a slice layout valid for that tier,
garbage padding columns and array contents. Layouts come in two kinds:

* serving layouts, built from a random block table by ``kvcache.slot_mapping`` exactly as a
  serving runner builds them (partial first and last pages, whole middle pages, packed
  sources);
* general layouts, anything the general tier allows: slices crossing page boundaries,
  zero-length slices, repeated and unordered sources, destinations anywhere.

Everything shrinks towards the first bucket, few columns, zero gaps and zero padding.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from kvcache.slot_mapping import request_slices
from oracle.contract import Tier, Update
from properties._src.buckets import BUCKETS, Bucket

INT32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def serving_columns(draw, bucket: Bucket) -> list[tuple[int, int, int]]:
    """Columns for a batch of requests, each with its own pages from a shuffled pool."""
    page_pool = list(draw(st.permutations(range(bucket.num_pages))))
    tokens_left, columns = bucket.num_tokens, []
    for _ in range(draw(st.integers(0, bucket.num_slices))):
        slices_left = bucket.num_slices - len(columns)
        if not (tokens_left and slices_left and page_pool):
            break
        owned = draw(st.integers(1, len(page_pool)))
        table, page_pool = page_pool[:owned], page_pool[owned:]
        computed = draw(st.integers(0, owned * bucket.page_size - 1))
        room_in_slices = (computed // bucket.page_size + slices_left) * bucket.page_size - computed
        scheduled = draw(
            st.integers(1, min(owned * bucket.page_size - computed, tokens_left, room_in_slices))
        )
        source = bucket.num_tokens - tokens_left
        for destination, length in request_slices(table, computed, scheduled, bucket.page_size):
            columns.append((destination, source, length))
            source += length
        tokens_left -= scheduled
    return columns


@st.composite
def general_columns(draw, bucket: Bucket) -> list[tuple[int, int, int]]:
    """Columns with disjoint destinations placed anywhere, sources anywhere in bounds."""
    rows, tokens = bucket.cache_rows, bucket.num_tokens
    lengths: list[int] = []
    for _ in range(draw(st.integers(0, bucket.num_slices))):
        lengths.append(draw(st.integers(0, min(bucket.page_size, tokens, rows - sum(lengths)))))
    slack = rows - sum(lengths)
    flush_end = draw(st.booleans())
    position, destinations = 0, [0] * len(lengths)
    for column in draw(st.permutations(range(len(lengths)))):
        gap = draw(st.integers(0, slack))
        slack -= gap
        position += gap
        destinations[column] = position
        position += lengths[column]
    if flush_end:  # the last slice in the cache ends on its last row
        destinations = [d + slack for d in destinations]
    sources = [draw(st.integers(0, tokens - length)) for length in lengths]
    return list(zip(destinations, sources, lengths, strict=True))


def padding_column(bucket: Bucket) -> st.SearchStrategy[tuple[int, int, int]]:
    """What a column past ``n`` may hold: zeros, a plausible slice, or any int32."""
    plausible = st.tuples(
        st.integers(0, bucket.cache_rows - 1),
        st.integers(0, bucket.num_tokens - 1),
        st.integers(1, bucket.page_size),
    )
    return st.one_of(st.just((0, 0, 0)), plausible, st.tuples(INT32, INT32, INT32))


def special_values(dtype: np.dtype) -> np.ndarray:
    """Bit patterns worth copying: signed zeros, infinities, NaNs with payloads, subnormals."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.array([0, -1, 1, info.min, info.max], dtype=dtype)
    info = jnp.finfo(dtype)
    values = np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            info.max,
            -info.max,
            info.tiny,
            info.smallest_subnormal,
        ],
        dtype=dtype,
    )
    bits = values.view(f"u{dtype.itemsize}")
    nan = int(bits[4])
    quiet_bit = 1 << (info.nmant - 1)
    sign_bit = 1 << (8 * dtype.itemsize - 1)
    payloads = np.array(
        [nan | 1, (nan & ~quiet_bit) | 1, nan | sign_bit | 0b101, nan | (quiet_bit - 1)],
        dtype=bits.dtype,
    )
    return np.concatenate([bits, payloads]).view(dtype)


@st.composite
def contents(draw, shape: tuple[int, ...], dtype: np.dtype, sign: int) -> np.ndarray:
    """An array whose rows are readable ids, random bit patterns, or special values."""
    kind = draw(st.sampled_from(["row-ids", "random-bits", "special-values"]))
    if kind == "row-ids":  # row r holds sign * (r + 1), so a misplaced row is easy to spot
        ids = sign * (np.arange(shape[0], dtype=np.int64) + 1)
        return np.broadcast_to(ids.reshape(-1, 1, 1), shape).astype(dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    unsigned = np.dtype(f"u{dtype.itemsize}")
    array = rng.integers(0, np.iinfo(unsigned).max, size=shape, dtype=unsigned, endpoint=True)
    if kind == "special-values":
        pool = special_values(dtype).view(unsigned)
        array = np.where(rng.random(shape) < 0.5, rng.choice(pool, size=shape), array)
    return array.view(dtype)


def columns_for(bucket: Bucket, tier: Tier) -> st.SearchStrategy[list[tuple[int, int, int]]]:
    """Real columns valid for ``tier``: serving layouts, or anything the general tier allows."""
    if tier == Tier.SERVING:
        return serving_columns(bucket)
    return st.one_of(general_columns(bucket), serving_columns(bucket))


@st.composite
def updates(draw, tier: Tier = Tier.GENERAL, buckets: tuple[Bucket, ...] = BUCKETS) -> Update:
    """A whole update valid for ``tier``, with garbage in its padding columns."""
    bucket = draw(st.sampled_from(buckets))
    columns = draw(columns_for(bucket, tier))
    padding = [draw(padding_column(bucket)) for _ in range(bucket.num_slices - len(columns))]
    slice_indices = np.array(columns + padding, dtype=np.int64).reshape(-1, 3).T.astype(np.int32)
    dtype = bucket.numpy_dtype
    return Update(
        new_kv_tokens=draw(contents((bucket.num_tokens, bucket.heads, bucket.head_dim), dtype, 1)),
        slice_indices=slice_indices,
        kv_cache_pages=draw(
            contents((bucket.cache_rows, bucket.heads, bucket.head_dim), dtype, -1)
        ),
        total_update_slices=np.full(bucket.count_shape, len(columns), dtype=np.int32),
        page_size=bucket.page_size,
    )
