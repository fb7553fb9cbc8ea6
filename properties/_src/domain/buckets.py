"""Static shapes the strategies draw from, and the domain they come from.

Everything here forces a recompile when it changes, so the ``ci`` and ``dev`` profiles draw
from ``BUCKETS``, a pool of 12 shapes built so that every edge class of every dimension the
contract allows is in it (``EDGE_CLASSES`` names them, and a test checks that each ``ci`` run
of each case reaches every shape). The ``thorough`` profile also draws shapes freely from the
whole domain (``DOMAIN``, ``DTYPES``; see ``strategies.any_bucket``). Runtime values (indices,
count, data) are drawn freely inside a shape. Even the count's shape is static: shapes
alternate between ``[1]`` and ``[]``. The pool starts with ``SHRINK_TARGET``, small and
readable, where counterexamples shrink to; ``MANY_COLUMNS`` is the shape an interpreted kernel
cannot afford.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from oracle.contract import Update

# Every dtype the harness draws: the ones a KV cache is stored in, and the others XLA:CPU
# scatters and the TPU interpreter copies (XLA's scatter keeps every bit of each but the NaN
# payloads of some narrow floats, which ``kvcache.scatter_probe`` finds). Left out, with the
# reason checked by hand, in docs/shapes-and-dtypes.md: 64-bit types (need jax_enable_x64),
# complex types, and sub-byte types.
DTYPES: tuple[str, ...] = (
    "float32",
    "bfloat16",
    "float16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e4m3b11fnuz",
    "float8_e4m3",
    "float8_e3m4",
    "float8_e8m0fnu",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "bool",
)


# The dtypes the pool writes (the shapes with no tokens or no columns repeat one); the rest of
# ``DTYPES`` only ``thorough`` draws.
POOL_DTYPES = (
    "float32",
    "bfloat16",
    "float16",
    "float8_e4m3fn",
    "float8_e5m2",
    "int8",
    "uint8",
    "int16",
    "int32",
    "bool",
)


@dataclass(frozen=True)
class Bucket:
    """The static shape of one update."""

    page_size: int
    num_pages: int
    heads: int
    head_dim: int
    dtype: str
    num_tokens: int
    num_slices: int
    count_shape: tuple[int, ...]  # of total_update_slices: [1] or [], both accepted

    @classmethod
    def of(cls, update: Update) -> Bucket:
        """The static shape of ``update``."""
        tokens, heads, head_dim = update.new_kv_tokens.shape
        return cls(
            page_size=update.page_size,
            num_pages=update.kv_cache_pages.shape[0] // update.page_size,
            heads=heads,
            head_dim=head_dim,
            dtype=update.kv_cache_pages.dtype.name,
            num_tokens=tokens,
            num_slices=update.slice_indices.shape[1],
            count_shape=update.total_update_slices.shape,
        )

    @property
    def cache_rows(self) -> int:
        return self.page_size * self.num_pages

    @property
    def row_bytes(self) -> int:
        return self.heads * self.head_dim * self.numpy_dtype.itemsize

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(jnp.dtype(self.dtype))


# fmt: off
SHRINK_TARGET = Bucket(4, 4, 1, 2, "float32", 8, 4, (1,))
"""The pool's first shape, small and readable. A pool's shape is drawn by its index, which
shrinks to 0 (``shapes.as_strategy``), so counterexamples shrink to it, fitted to the
constraints; the serving loop runs on it (``serving_loop.loop_shape``)."""

MANY_COLUMNS = Bucket(2, 320, 1, 1, "bool", 4096, 300, (1,))
"""Over 256 columns: more than an interpreted kernel can afford (``INTERPRETER_MAX_COLUMNS``).
A property case learns that an implementation runs in the TPU interpreter from its calls on
the shapes before this one (``shapes.affordable``), so it must not come first in the pool."""

BUCKETS: tuple[Bucket, ...] = (SHRINK_TARGET, *(Bucket(*row) for row in (
    # page  pages  heads head_dim dtype            tokens slices count
    (1,     16,    2,    4,       "int8",          12,    8,     ()),
    (33,    5,     3,    80,      "bfloat16",      70,    12,    (1,)),
    (16,    8,     5,    192,     "float16",       40,    9,     ()),
    (7,     24,    64,   96,      "float8_e4m3fn", 30,    20,    (1,)),
    (1024,  3,     1,    320,     "float8_e5m2",   3000,  5,     ()),
    (3,     4,     7,    512,     "bfloat16",      0,     6,     (1,)),
    (64,    1,     2,    128,     "int32",         64,    3,     ()),
)), MANY_COLUMNS, *(Bucket(*row) for row in (
    (1000,  40,    1,    2,       "int16",         2500,  24,    ()),
    (1024,  17408, 1,    1,       "uint8",         2048,  16,    (1,)),
    (2,     20,    4,    8,       "float32",       40,    0,     ()),
)))
# fmt: on


# The TPU interpreter pays for every grid step of 8 columns, launched or idle (about 0.1 s a
# step on a loaded 2-core machine): ``MANY_COLUMNS`` costs an interpreted kernel seconds
# an example. Tests of the interpreted kernel draw from these shapes instead.
INTERPRETER_MAX_COLUMNS = 64
AFFORDABLE_WHEN_INTERPRETED: tuple[Bucket, ...] = tuple(
    b for b in BUCKETS if b.num_slices <= INTERPRETER_MAX_COLUMNS
)


def _having(field: str, value: object) -> Callable[[Bucket], bool]:
    """The test that a shape's ``field`` is ``value``."""
    return lambda bucket: getattr(bucket, field) == value


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


# The edge classes of each dimension, each a test on a shape; every one holds for some shape
# in ``BUCKETS`` (tests/unit/test_strategies.py checks it, and that each ci run reaches them).
EDGE_CLASSES: dict[str, Callable[[Bucket], bool]] = {
    "page size 1": lambda b: b.page_size == 1,
    "page size a power of two": lambda b: b.page_size > 1 and _power_of_two(b.page_size),
    "page size not a power of two": lambda b: not _power_of_two(b.page_size),
    "page size over 256": lambda b: 256 < b.page_size < 1024,
    "page size 1024": lambda b: b.page_size >= 1024,
    "one-page cache": lambda b: b.num_pages == 1,
    "cache past 2^15 rows": lambda b: 2**15 < b.cache_rows <= 2**16,
    "cache past 2^16 rows": lambda b: b.cache_rows > 2**16,
    "cache past 2^24 rows": lambda b: b.cache_rows > 2**24,
    "one head": lambda b: b.heads == 1,
    "odd heads above 1": lambda b: b.heads > 1 and b.heads % 2 == 1,
    "64 heads": lambda b: b.heads >= 64,
    "head_dim 1": lambda b: b.head_dim == 1,
    **{f"head_dim {w}": _having("head_dim", w) for w in (80, 96, 128, 192, 320, 512)},
    "no columns": lambda b: b.num_slices == 0,
    "over 8 columns": lambda b: b.num_slices > 8,
    "over 256 columns": lambda b: b.num_slices > 256,
    "no new tokens": lambda b: b.num_tokens == 0,
    "thousands of new tokens": lambda b: b.num_tokens > 2048,
    "count of shape [1]": lambda b: b.count_shape == (1,),
    "count of shape []": lambda b: b.count_shape == (),
    **{f"dtype {name}": _having("dtype", name) for name in POOL_DTYPES},
}
