"""Which static shapes a run draws: the pool, or the pool and the whole domain.

The ``ci`` and ``dev`` profiles draw from the pool (``buckets.BUCKETS``), so each run pays one
compilation per pool shape and still reaches every edge class. ``thorough`` also draws shapes
freely (``any_bucket``), half its examples, paying a compilation for most of those.
Constraints (``head_dim%128``) apply to both: the pool is fitted (``constraints.fitting``) and
free shapes are drawn as multiples of each divisor, with the dtypes a constraint fixes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import overload

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from oracle.contract import Tier
from properties._src.calling.implementations import Implementation, seen_interpreted
from properties._src.domain.buckets import (
    BUCKETS,
    INTERPRETER_MAX_COLUMNS,
    Bucket,
)
from properties._src.domain.constraints import (
    MAX_CACHE_BYTES,
    MAX_COLUMNS,
    MAX_HEAD_DIM,
    MAX_HEADS,
    MAX_PAGE_BYTES,
    MAX_PAGE_SIZE,
    MAX_TOKEN_BYTES,
    MAX_TOKENS,
    Constraint,
    dtypes_allowed,
    fitting,
)

Shapes = tuple[Bucket, ...] | st.SearchStrategy[Bucket]

FREE_PROFILES = ("thorough",)  # the profiles that draw shapes beyond the pool

# The values each dimension's edge classes start from, in the domain drawn freely.
USUAL_PAGES = 256  # more pages than this only at the row-count edges below
EDGES = {
    "heads": (1, 2, 3, 64, 65),
    "head_dim": (1, 80, 96, 128, 192, 320, 512),
    "page_size": (1, 2, 3, 256, 1000, 1024),
    "tokens": (0, 1, 2049, 4096),
    "columns": (0, 1, 8, 9, 256, 257, 300, 512, 513, 1030),
}
# Row counts where narrow index arithmetic breaks (int16, uint16, float32): caches just past
# them are drawn often, and so are slices starting in the pages that hold them.
ROW_COUNTS_PAST = (2**15, 2**16, 2**24)


def _divisors(constraints: tuple[Constraint, ...]) -> dict[str, int]:
    """The least common multiple of the divisors each dimension must meet."""
    found: dict[str, int] = {}
    for c in constraints:
        if c.dtype is None:
            found[c.dimension] = math.lcm(found.get(c.dimension, 1), c.divisor)
    return found


@st.composite
def any_bucket(draw, constraints: tuple[Constraint, ...] = ()) -> Bucket:
    """A shape from the whole domain, within memory bounds, meeting ``constraints``."""
    divisor = _divisors(constraints)

    def dimension(name: str, low: int, high: int, edges=(), usual: int | None = None) -> int:
        """A multiple of the dimension's divisor in [low, high] (up to ``usual`` unless an
        edge), or the smallest one above ``low`` if none is below ``high``."""
        k = divisor.get(name, 1)
        low, high = math.ceil(low / k), max(high // k, math.ceil(low / k))
        fitting_edges = sorted({e // k for e in edges if e % k == 0 and low <= e // k <= high})
        multiple = st.integers(low, max(low, min(high, (usual or high * k) // k)))
        if fitting_edges:
            multiple = st.one_of(multiple, st.sampled_from(fitting_edges))
        return draw(multiple) * k

    dtype = draw(st.sampled_from(dtypes_allowed("dtype", constraints)))
    itemsize = Bucket(1, 1, 1, 1, dtype, 0, 0, ()).numpy_dtype.itemsize
    heads = dimension("heads", 1, MAX_HEADS, EDGES["heads"])
    head_dim = dimension("head_dim", 1, MAX_HEAD_DIM, EDGES["head_dim"])
    row_bytes = heads * head_dim * itemsize
    tables = dtypes_allowed("table_dtype", constraints)
    widest = max(int(np.iinfo(t).max) for t in tables)
    page_size = dimension(
        "page_size", 1, min(MAX_PAGE_SIZE, MAX_PAGE_BYTES // row_bytes, widest), EDGES["page_size"]
    )
    most_pages = MAX_CACHE_BYTES // (page_size * row_bytes)
    past = [rows // page_size + 1 for rows in ROW_COUNTS_PAST]
    pages = dimension("pages", 1, most_pages, [1, 2, *past], usual=USUAL_PAGES)
    tokens = dimension("tokens", 0, min(MAX_TOKENS, MAX_TOKEN_BYTES // row_bytes), EDGES["tokens"])
    columns = dimension("columns", 0, MAX_COLUMNS, EDGES["columns"])
    count_shape = draw(st.sampled_from([(1,), ()]))
    table = draw(st.sampled_from([t for t in tables if page_size <= np.iinfo(t).max]))
    count = draw(st.sampled_from(dtypes_allowed("count_dtype", constraints)))
    return Bucket(
        page_size, pages, heads, head_dim, dtype, tokens, columns, count_shape, table, count
    )


def shape_space(
    constraints: tuple[Constraint, ...] = (),
    *,
    free: bool | None = None,
    pool: tuple[Bucket, ...] = BUCKETS,
) -> Shapes:
    """``pool`` fitted to ``constraints``, and with ``free`` (by default: when the loaded
    Hypothesis profile is one of ``FREE_PROFILES``) shapes drawn from the whole domain too."""
    if free is None:
        free = settings.get_current_profile_name() in FREE_PROFILES
    if not free:
        return fitting(pool, constraints)
    return st.one_of(as_strategy(fitting(pool, constraints)), any_bucket(constraints))


def holds_a_serving_step(bucket: Bucket) -> bool:
    """Whether an update of ``bucket``'s shape can be a serving step: one with a real column
    and a new token (the contract's ``step-nonempty``)."""
    return bucket.num_tokens >= 1 and bucket.num_slices >= 1


@overload
def for_tier(shapes: tuple[Bucket, ...], tier: Tier) -> tuple[Bucket, ...]: ...


@overload
def for_tier(shapes: st.SearchStrategy[Bucket], tier: Tier) -> st.SearchStrategy[Bucket]: ...


def for_tier(shapes: Shapes, tier: Tier) -> Shapes:
    """The shapes of ``shapes`` that hold an update of ``tier``: every one for the general
    tier, those that ``holds_a_serving_step`` for the serving tier. A pool left with none is
    refused (``ValueError``): no serving step could be drawn from it."""
    if tier < Tier.SERVING:
        return shapes
    if not isinstance(shapes, tuple):
        return shapes.filter(holds_a_serving_step)
    kept = tuple(bucket for bucket in shapes if holds_a_serving_step(bucket))
    if not kept:
        raise ValueError(
            f"no serving step fits these shapes (none has a token and a column): {shapes}"
        )
    return kept


def as_strategy(shapes: Shapes) -> st.SearchStrategy[Bucket]:
    """Draw from a pool, or from a strategy as it is.

    A pool's shape is picked by a 32-bit integer modulo its size rather than by
    ``sampled_from``: Hypothesis spends most of a small budget mutating earlier examples,
    which keeps a ``sampled_from`` choice (runs of one shape) but copies values between
    integer draws, so shapes change within those runs too. It shrinks to 0, the first shape
    (``buckets.SHRINK_TARGET`` in the pool).
    """
    if isinstance(shapes, st.SearchStrategy):
        return shapes
    return st.integers(0, 2**32 - 1).map(lambda value: shapes[value % len(shapes)])


def interpreted_columns(constraints: tuple[Constraint, ...] = ()) -> int:
    """The columns a shape of more than ``INTERPRETER_MAX_COLUMNS`` is drawn with for an
    implementation seen running a kernel in the TPU interpreter: that many, rounded down to what
    ``constraints`` on columns allow (0: no multiple fits, and the shape is drawn whole)."""
    step = _divisors(constraints).get("columns", 1)
    return INTERPRETER_MAX_COLUMNS // step * step


def within_budget(
    implementation: Implementation, shapes: Shapes, constraints: tuple[Constraint, ...] = ()
) -> st.SearchStrategy[Bucket]:
    """Draw from ``shapes`` as ``implementation`` can afford them: as they are, unless it has
    been seen running a kernel in the TPU interpreter, which pays for every grid step; then a
    shape of more than ``INTERPRETER_MAX_COLUMNS`` columns is drawn with that many (rounded
    down to what ``constraints`` on columns allow), the rest of it as it is: its dtypes, pages,
    rows and tokens are still reached.

    Read as each shape is drawn: a property case searches the pool's shapes in order and the
    first (``buckets.SHRINK_TARGET``) is affordable, as a test checks, so by any other it
    knows."""
    most = interpreted_columns(constraints)

    def afforded(bucket: Bucket) -> Bucket:
        if bucket.num_slices <= INTERPRETER_MAX_COLUMNS or not most:
            return bucket
        return replace(bucket, num_slices=most) if seen_interpreted(implementation) else bucket

    return as_strategy(shapes).map(afforded)
