"""Hypothesis strategies for paged KV-cache updates.

``updates(tier)`` draws a bucket (static shape), a slice layout valid for that tier,
garbage padding columns and array contents. Layouts come in two kinds:

* serving layouts, built from a random block table by ``kvcache.slot_mapping`` exactly as a
  serving runner builds them (partial first and last pages, whole middle pages, packed
  sources);
* general layouts, anything the general tier allows: slices crossing page boundaries,
  zero-length slices, repeated and unordered sources, destinations anywhere.

Everything shrinks towards the first bucket, few columns, zero gaps and zero padding; a
serving layout's simplest request writes the cache's last row, and the simplest contents are
labelled rows carrying the dtype's special values (``contents.row_ids``): the first example
drawn on each shape already tries the bounds and the bit patterns implementations get wrong.
"""

from __future__ import annotations

import functools
import random
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from kvcache._arguments import cdiv
from kvcache.slot_mapping import request_slices
from oracle.contract import Tier, Update
from properties._src.domain.buckets import Bucket
from properties._src.domain.classes import count_max, table_max
from properties._src.drawing.contents import (
    random_bits,
    row_ids,
    with_special_values,
)
from properties._src.drawing.shapes import (
    ROW_COUNTS_PAST,
    Shapes,
    as_strategy,
    for_tier,
    shape_space,
)

HYPOTHESIS_CHOICES = 96  # per layout; the rest come from a generator Hypothesis seeds


@functools.lru_cache(maxsize=4096)
def _integers(low: int, high: int, often: tuple[int, ...]) -> st.SearchStrategy[int]:
    """An integer in [low, high], ``often`` values half the time. Cached: a layout draws
    hundreds, and a new strategy object is validated afresh on its first draw (a tenth of a
    millisecond here, most of a layout's drawing)."""
    uniform = st.integers(low, high)
    return st.one_of(uniform, st.sampled_from(often)) if often else uniform


class Choices:
    """The decisions behind one layout: the first ``HYPOTHESIS_CHOICES`` drawn by Hypothesis
    (so they shrink), the rest from a generator seeded by one draw, so a layout of hundreds of
    columns costs a bounded number of draws. ``often`` values are picked half the time: the
    edges a uniform draw would rarely hit.

    The generator is Python's ``random.Random``: it draws an exact integer of any width (a
    padding column's values span int64) in a fraction of a NumPy generator's per-call cost,
    and a wide layout makes hundreds of such calls."""

    def __init__(self, draw):
        self._draw, self._left, self._rng = draw, HYPOTHESIS_CHOICES, None

    def _generator(self) -> random.Random | None:
        if self._left > 0:
            self._left -= 1
            return None
        if self._rng is None:
            self._rng = random.Random(self._draw(st.integers(0, 2**32 - 1)))
        return self._rng

    def integer(self, low: int, high: int, often=()) -> int:
        often = tuple(v for v in often if low <= v <= high)
        rng = self._generator()
        if rng is None:
            return self._draw(_integers(low, high, often))
        if often and rng.getrandbits(1):
            return often[rng.randrange(len(often))]
        return rng.randint(low, high)

    def boolean(self) -> bool:
        return bool(self.integer(0, 1))

    def permutation(self, count: int) -> list[int]:
        order = list(range(count))
        for i in range(count - 1):  # Fisher-Yates: the identity when every choice shrinks to 0
            j = self.integer(i, count - 1)
            order[i], order[j] = order[j], order[i]
        return order


def _page(choose: Choices, num_pages: int, page_size: int, taken: set[int]) -> int:
    """A page not in ``taken`` (and now in it): the last page is the simplest (where bounds
    checks fail, so even the first example drawn tries it), often the first, or the page
    holding row 2^15, 2^16 or 2^24 (where index arithmetic in narrow types breaks)."""
    last = num_pages - 1
    edges = [last - row // page_size for row in ROW_COUNTS_PAST]
    wanted = last - choose.integer(0, last, often=[last, *edges])
    page = next(
        p % num_pages for p in range(wanted, wanted + num_pages) if p % num_pages not in taken
    )
    taken.add(page)
    return page


def serving_columns(choose: Choices, bucket: Bucket) -> list[tuple[int, int, int]]:
    """Columns for a batch of requests, each writing to pages no other request holds: at
    least one request whenever the shape has a token and a column (a serving step has one).

    A request's tokens start at an offset into its first page and run through whole pages,
    as a runner's slot mapping lays them out. When ``fill`` is chosen, requests keep coming
    until every column is real (or the pages run out), leaving each later one a token.
    """
    ps, taken = bucket.page_size, set[int]()
    fill = choose.boolean()
    tokens_left, columns = bucket.num_tokens, list[tuple[int, int, int]]()
    slices = bucket.num_slices
    requests = slices if fill else choose.integer(min(1, slices), slices)
    for _ in range(requests):
        slices_left = bucket.num_slices - len(columns)
        if not (tokens_left and slices_left and len(taken) < bucket.num_pages):
            break
        # The page's last row is the simplest; often its first or second (odd rows).
        offset = ps - 1 - choose.integer(0, ps - 1, often=[ps - 1, ps - 2])
        room = min(slices_left, bucket.num_pages - len(taken)) * ps - offset
        reserve = slices_left - 1 if fill else 0  # a token for each column still to fill
        most = min(room, max(tokens_left - reserve, 1))
        scheduled = choose.integer(1, most, often=[most])
        table = [
            _page(choose, bucket.num_pages, ps, taken) for _ in range(cdiv(offset + scheduled, ps))
        ]
        source = bucket.num_tokens - tokens_left
        for destination, length in request_slices(table, offset, scheduled, ps):
            columns.append((destination, source, length))
            source += length
        tokens_left -= scheduled
    return columns


def general_columns(choose: Choices, bucket: Bucket) -> list[tuple[int, int, int]]:
    """Columns with disjoint destinations placed anywhere, sources anywhere in bounds.

    Often every column is real, slices are whole pages or single rows, sources repeat (so the
    rows written can outnumber the new tokens) or end on the last new token, and the last
    slice in the cache ends on its last row.
    """
    rows, tokens, ps = bucket.cache_rows, bucket.num_tokens, bucket.page_size
    drawn: list[int] = []
    # The longest slice: often a page (or the tokens), often one row, so that every column of
    # a wide table writes (a decode step's, many to a page: a kernel's block of columns full).
    longest = min(ps, tokens)
    longest = choose.integer(0, longest, often=[longest, 1])
    for _ in range(choose.integer(0, bucket.num_slices, often=[bucket.num_slices])):
        most = min(longest, rows - sum(drawn))
        drawn.append(choose.integer(0, most, often=[most]))
    # Any column may hold any length: once the rows run out, the rest are empty, and this
    # spreads the non-empty ones over all the columns.
    lengths = [drawn[i] for i in choose.permutation(len(drawn))]
    slack = rows - sum(lengths)
    flush_end = choose.boolean()
    position, destinations = 0, [0] * len(lengths)
    for column in choose.permutation(len(lengths)):
        gap = choose.integer(0, slack)
        slack -= gap
        position += gap
        destinations[column] = position
        position += lengths[column]
    if flush_end:  # the last slice in the cache ends on its last row
        destinations = [d + slack for d in destinations]
    sources: list[int] = []
    for length in lengths:
        last = tokens - length  # the source that ends on the last new token
        sources.append(choose.integer(0, last, often=[last, *sources[-1:]]))  # or repeats
    return list(zip(destinations, sources, lengths, strict=True))


def padding_columns(choose: Choices, bucket: Bucket, count: int) -> list[tuple[int, int, int]]:
    """``count`` columns past ``n``, each holding zeros, a plausible slice, or any values of
    the slice table's dtype."""
    top = table_max(bucket)
    limits = np.iinfo(bucket.table_dtype)
    low, high = int(limits.min), int(limits.max)
    plausible = (min(bucket.cache_rows - 1, top), min(max(bucket.num_tokens - 1, 0), top))

    def column() -> tuple[int, int, int]:
        kind = choose.integer(0, 2)
        if kind == 0:
            return (0, 0, 0)
        if kind == 1:
            return (
                choose.integer(0, plausible[0]),
                choose.integer(0, plausible[1]),
                choose.integer(1, bucket.page_size),
            )
        return (choose.integer(low, high), choose.integer(low, high), choose.integer(low, high))

    return [column() for _ in range(count)]


def addressable(bucket: Bucket) -> Bucket:
    """The part of ``bucket`` a layout can use when its values must fit the slice table's and
    the count's dtypes: the whole pages and the tokens up to one past the table's largest
    value (so a slice can end there, where arithmetic in the table's dtype wraps), and as many
    real columns as the count's dtype holds. Rows past it must stay as they are."""
    reach = table_max(bucket) + 1
    return replace(
        bucket,
        num_pages=min(bucket.num_pages, reach // bucket.page_size),
        num_tokens=min(bucket.num_tokens, reach),
        num_slices=min(bucket.num_slices, count_max(bucket)),
    )


@st.composite
def contents(draw, shape: tuple[int, ...], dtype: np.dtype, sign: int) -> np.ndarray:
    """An array of labelled rows (``row_ids``: the simplest), random bit patterns, or random
    bit patterns half replaced by special values."""
    kind = draw(st.sampled_from(["row-ids", "random-bits", "special-values"]))
    if kind == "row-ids":
        return row_ids(shape, dtype, sign)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    array = random_bits(rng, shape, dtype)
    if kind == "special-values":
        array = with_special_values(rng, array, dtype)
    return array.view(dtype)


@st.composite
def slice_indices_for(draw, bucket: Bucket, tier: Tier) -> tuple[np.ndarray, int]:
    """``slice_indices`` and ``n``: real columns valid for ``tier`` (a serving layout, or for the
    general tier also anything it allows), then garbage padding columns."""
    choose = Choices(draw)
    # The simplest layout is a serving one; the general tier draws its own kind most often.
    general = tier == Tier.GENERAL and choose.integer(0, 1, often=[1]) == 1
    columns = (general_columns if general else serving_columns)(choose, addressable(bucket))
    top = table_max(bucket)  # an empty slice may start one past the rows it can use
    columns = [(min(d, top), min(s, top), ln) if ln == 0 else (d, s, ln) for d, s, ln in columns]
    padding = padding_columns(choose, bucket, bucket.num_slices - len(columns))
    indices = np.array(columns + padding, dtype=np.int64).reshape(-1, 3).T
    return indices.astype(bucket.table_dtype), len(columns)


@st.composite
def updates(
    draw, tier: Tier = Tier.GENERAL, buckets: Shapes | None = None, *, zeros: bool = False
) -> Update:
    """A whole update valid for ``tier``, with garbage in its padding columns.

    ``buckets`` is a pool of shapes or a strategy drawing them; by default, the shapes the
    loaded Hypothesis profile calls for (``shapes.shape_space``). The serving tier draws only
    the shapes that hold a serving step (``shapes.for_tier``). With ``zeros``, the tokens and
    the cache hold zeros instead of drawn contents: for checks that read only shapes, dtypes
    and indices, such as validation (filling the pool's 32 MiB caches is most of a draw).
    """
    bucket = draw(as_strategy(for_tier(shape_space() if buckets is None else buckets, tier)))
    slice_indices, n = draw(slice_indices_for(bucket, tier))
    dtype = bucket.numpy_dtype

    def filled(rows: int, sign: int) -> np.ndarray:
        shape = (rows, bucket.heads, bucket.head_dim)
        return np.zeros(shape, dtype) if zeros else draw(contents(shape, dtype, sign))

    return Update(
        new_kv_tokens=filled(bucket.num_tokens, 1),
        slice_indices=slice_indices,
        kv_cache_pages=filled(bucket.cache_rows, -1),
        total_update_slices=np.full(bucket.count_shape, n, dtype=bucket.count_dtype),
        page_size=bucket.page_size,
    )
