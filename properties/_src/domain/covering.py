"""The pool's construction: a greedy pairwise covering array over the classes of ``classes``.

Targets are every pair of classes from two paired dimensions and every class of each exact
dimension (each dtype by name). Candidates are concrete shapes drawn from a fixed seed with
values chosen to reach each class and relation (tokens below, at and past a page; columns
equal to tokens; caches just past 2^15, 2^16 and 2^24 rows; pages just past 2 MiB), kept if
they lie in the domain (``constraints.in_domain``). Starting from ``SHRINK_TARGET``, the greedy
step adds the affordable candidate (``affordable_in_pool``) that covers the most targets not
yet covered, the cheaper on a tie, until no candidate covers one more. ``buckets.BUCKETS``
is its output written out (a test checks that they are equal), so the pool reads as a table.

Targets some domain candidate reaches but no affordable one does are left to ``thorough``
(``left_to_thorough``); targets no domain candidate reaches are outside the domain (a pair
no shape can have, such as one page of one row holding over 2 MiB).
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass

import numpy as np

from properties._src.domain.buckets import DTYPES, INDEX_DTYPES, SHRINK_TARGET, Bucket
from properties._src.domain.classes import EVERY_DIMENSION, MiB
from properties._src.domain.constraints import in_domain

SEED, CANDIDATES = 21, 40_000

# What the ci pool affords a shape: compiling and drawing examples of it costs the cache's and
# the tokens' bytes a few times over, every case.
POOL_MAX_CACHE_BYTES = 2**25
POOL_MAX_TOKEN_BYTES = 2**22
POOL_MAX_COLUMNS = 640

HEADS = (1, 2, 3, 4, 5, 7, 8, 16, 32, 63, 64, 72)
HEAD_DIMS = (1, 2, 8, 64, 80, 96, 127, 128, 192, 256, 320, 512, 640)
PAGE_SIZES = (1, 2, 3, 4, 7, 8, 16, 33, 64, 100, 128, 255, 256, 300, 512, 1000, 1024, 2048)
SMALL_PAGES = (2, 3, 4, 5, 8, 24, 40, 256, 300)
ROW_EDGES = (2**15, 2**16, 2**24)
MANY_COLUMNS = (520, 600, 1030)

Target = tuple[int, ...]  # (dimension, class) or (dimension, class, dimension, class)


def affordable_in_pool(bucket: Bucket) -> bool:
    """Whether the ci pool can afford ``bucket`` (``POOL_MAX_*``)."""
    return (
        bucket.cache_rows * bucket.row_bytes <= POOL_MAX_CACHE_BYTES
        and bucket.num_tokens * bucket.row_bytes <= POOL_MAX_TOKEN_BYTES
        and bucket.num_slices <= POOL_MAX_COLUMNS
    )


def _candidate(rng: random.Random) -> Bucket:
    """A concrete shape, its values chosen to reach each class and relation."""
    dtype = rng.choice(DTYPES)
    heads, head_dim = rng.choice(HEADS), rng.choice(HEAD_DIMS)
    row_bytes = heads * head_dim * Bucket(1, 1, 1, 1, dtype, 0, 0, ()).numpy_dtype.itemsize
    page = rng.choice(PAGE_SIZES)
    if rng.random() < 0.2:  # a page just past 2 MiB
        page = 2 * MiB // row_bytes + 1
    edge = rng.randrange(5)
    pages = 1 if edge == 0 else rng.choice(SMALL_PAGES) if edge == 1 else 0
    pages = pages or ROW_EDGES[edge - 2] // page + 1
    tokens = rng.choice(
        (0, rng.randint(1, max(page - 1, 1)), page, rng.randint(page + 1, 3 * page))
        + (rng.choice((2049, 3000, 4096)), rng.randint(1, 16))
    )
    columns = rng.choice(
        (0, rng.randint(1, 8), rng.randint(9, 64), rng.randint(65, 512), rng.choice(MANY_COLUMNS))
        + (tokens, max(-(-tokens // page) - 1, 0), 8 * rng.randint(1, 8))
    )
    return Bucket(
        page,
        pages,
        heads,
        head_dim,
        dtype,
        tokens,
        columns,
        rng.choice(((1,), ())),
        rng.choice(INDEX_DTYPES),
        rng.choice(INDEX_DTYPES),
    )


def targets_of(bucket: Bucket) -> list[Target]:
    """The targets ``bucket`` covers: each pair of paired classes, and each exact class (each
    dtype) where an update of the shape can write a row, so that every dtype is copied."""
    found = [d.classes.index(d.of(bucket)) for d in EVERY_DIMENSION]
    paired = [i for i, d in enumerate(EVERY_DIMENSION) if d.paired]
    writes = bucket.num_tokens > 0 and bucket.num_slices > 0
    singles: list[Target] = [
        (i, found[i]) for i, d in enumerate(EVERY_DIMENSION) if writes and not d.paired
    ]
    pairs: list[Target] = [(i, found[i], j, found[j]) for i, j in itertools.combinations(paired, 2)]
    return singles + pairs


def every_target() -> list[Target]:
    """Every target there is, reachable or not."""
    dims = list(enumerate(EVERY_DIMENSION))
    singles: list[Target] = [(i, c) for i, d in dims if not d.paired for c in range(len(d.classes))]
    pairs: list[Target] = [
        (i, a, j, b)
        for (i, d), (j, e) in itertools.combinations([(i, d) for i, d in dims if d.paired], 2)
        for a in range(len(d.classes))
        for b in range(len(e.classes))
    ]
    return singles + pairs


def name(target: Target) -> str:
    """``dimension: class`` or ``dimension: class & dimension: class``."""
    parts = zip(target[::2], target[1::2], strict=True)
    return " & ".join(EVERY_DIMENSION[i].label(EVERY_DIMENSION[i].classes[c]) for i, c in parts)


def _cost(bucket: Bucket) -> int:
    """Bytes, and a compilation that grows with the columns (about 1 s, 3 s past 500)."""
    return (bucket.cache_rows + bucket.num_tokens) * bucket.row_bytes + 2**15 * bucket.num_slices


@dataclass(frozen=True)
class Covering:
    """The pool the construction builds and what it leaves out."""

    pool: tuple[Bucket, ...]
    left_to_thorough: tuple[Target, ...]  # reached in the domain, not within the pool's costs
    outside_domain: tuple[Target, ...]  # reached by no shape of the domain


@functools.cache
def construct() -> Covering:
    """The greedy covering array (deterministic: a fixed seed and fixed tie-breaks)."""
    rng = random.Random(SEED)
    in_reach = [b for b in (_candidate(rng) for _ in range(CANDIDATES)) if in_domain(b)]
    cheapest: dict[tuple[Target, ...], Bucket] = {}
    domain_targets: set[Target] = set()
    for bucket in in_reach:
        covered = tuple(targets_of(bucket))
        domain_targets.update(covered)
        if affordable_in_pool(bucket) and (
            covered not in cheapest or _cost(bucket) < _cost(cheapest[covered])
        ):
            cheapest[covered] = bucket
    index = {t: k for k, t in enumerate(every_target())}
    shapes = list(cheapest.values())
    width = max(map(len, cheapest))  # shorter rows point at a last slot that is always done
    table = np.array([[index[t] for t in c] + [len(index)] * (width - len(c)) for c in cheapest])
    costs = np.array([_cost(b) for b in shapes], dtype=np.float64)
    done = np.zeros(len(index) + 1, dtype=bool)
    done[-1] = True
    pool = [SHRINK_TARGET]
    done[[index[t] for t in targets_of(SHRINK_TARGET)]] = True
    while True:
        gains = (~done[table]).sum(axis=1)
        best = int(np.lexsort((costs, -gains))[0])
        if gains[best] == 0:
            break
        pool.append(shapes[best])
        done[table[best]] = True
    reached = {t for t, k in index.items() if done[k]}
    return Covering(
        tuple(pool),
        tuple(sorted(domain_targets - reached)),
        tuple(sorted(set(index) - domain_targets)),
    )
