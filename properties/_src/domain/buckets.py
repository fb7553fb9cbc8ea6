"""Static shapes the strategies draw from, and the domain they come from.

Everything here forces a recompile when it changes, so the ``ci`` and ``dev`` profiles draw
from ``BUCKETS``, a pool built as a pairwise covering array over the contract's dimensions and
relations (``classes`` names them, ``covering`` builds the pool, and a test checks that each
``ci`` run of each case reaches every shape). The ``thorough`` profile also draws shapes freely
from the whole domain (``DTYPES``, ``INDEX_DTYPES``; see ``shapes.any_bucket``). Runtime
values (indices, count, data) are drawn freely inside a shape. Even the count's shape and
the dtypes of the slice table and the count are static. The pool starts with
``SHRINK_TARGET``, small and readable, where counterexamples shrink to.
"""

from __future__ import annotations

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


# The dtypes the slice table and the count are drawn in: every integer type of 8 to 32 bits
# (64-bit ones need jax_enable_x64, as 64-bit caches do).
INDEX_DTYPES: tuple[str, ...] = ("int8", "uint8", "int16", "uint16", "int32", "uint32")


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
    table_dtype: str = "int32"  # of slice_indices: any integer type holding a page's length
    count_dtype: str = "int32"  # of total_update_slices: any integer type

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
            table_dtype=update.slice_indices.dtype.name,
            count_dtype=update.total_update_slices.dtype.name,
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
constraints; the serving loop runs on it (``serving_loop.loop_shape``). A property case
learns that an implementation runs in the TPU interpreter from its calls on it, before any
shape it cannot afford whole (``shapes.within_budget``)."""

BUCKETS: tuple[Bucket, ...] = (SHRINK_TARGET, *(Bucket(*row) for row in (
    # page pages     heads dim  dtype                 tokens cols count table     count dtype
    (7,    4682,     4,    1,   "uint8",              2049,  0,   (),   "uint8",  "uint16"),
    (512,  1,        3,    640, "uint16",             512,   512, (),   "int16",  "uint8"),
    (152,  2,        72,   192, "bool",               135,   600, (1,), "uint16", "uint8"),
    (1,    32769,    1,    320, "float16",            0,     14,  (1,), "int8",   "uint8"),
    (300,  1,        7,    2,   "bool",               3000,  5,   (1,), "uint16", "int16"),
    (17,   1,        63,   512, "float32",            0,     0,   (),   "int32",  "int16"),
    (1,    4,        63,   1,   "uint32",             4096,  520, (1,), "int8",   "int8"),
    (4,    4194305,  1,    1,   "int8",               4,     467, (1,), "uint32", "uint16"),
    (100,  328,      4,    1,   "float16",            6,     6,   (),   "int16",  "int32"),
    (2,    24,       1,    640, "int16",              2049,  520, (),   "int8",   "uint32"),
    (2048, 33,       3,    128, "bool",               0,     0,   (1,), "int16",  "int32"),
    (1,    32769,    4,    2,   "float32",            1,     6,   (),   "int8",   "uint32"),
    (128,  513,      64,   1,   "float8_e8m0fnu",     0,     520, (1,), "uint16", "uint8"),
    (820,  3,        1,    640, "float32",            261,   261, (1,), "int16",  "uint16"),
    (1639, 1,        16,   80,  "uint8",              2049,  167, (),   "int32",  "int32"),
    (128,  1,        64,   256, "int16",              10,    0,   (1,), "uint32", "uint8"),
    (2,    8388609,  1,    1,   "bool",               2049,  322, (),   "int8",   "int32"),
    (1,    1,        3,    256, "float8_e5m2",        3,     8,   (1,), "uint32", "uint16"),
    (255,  5,        72,   127, "float8_e4m3",        255,   255, (1,), "uint8",  "uint16"),
    (512,  32769,    1,    1,   "float8_e4m3fnuz",    512,   520, (1,), "uint16", "int8"),
    (8,    4097,     3,    2,   "int32",              0,     4,   (1,), "int32",  "uint8"),
    (1,    5,        1,    2,   "bool",               1,     0,   (),   "uint32", "uint32"),
    (300,  1,        1,    80,  "uint32",             532,   532, (),   "uint32", "uint8"),
    (7,    300,      3,    128, "float8_e5m2",        4096,  305, (1,), "int16",  "int32"),
    (8,    1,        3,    256, "bfloat16",           4,     5,   (),   "uint8",  "uint16"),
    (1,    16777217, 1,    1,   "float8_e8m0fnu",     2,     2,   (),   "int8",   "int32"),
    (1,    1,        7,    1,   "float8_e4m3fn",      6,     0,   (),   "uint16", "int16"),
    (33,   993,      1,    1,   "int32",              32,    2,   (),   "uint32", "int8"),
    (256,  65537,    1,    1,   "float8_e8m0fnu",     0,     0,   (),   "int32",  "uint16"),
    (205,  1,        16,   640, "float8_e5m2fnuz",    205,   3,   (1,), "uint8",  "int8"),
    (16,   1,        7,    2,   "float8_e3m4",        1,     1,   (1,), "uint32", "int16"),
    (64,   2,        4,    1,   "float8_e4m3b11fnuz", 171,   8,   (),   "int8",   "int16"),
    (1,    1,        3,    8,   "float8_e4m3fn",      2,     520, (),   "uint32", "int16"),
    (3,    5592406,  1,    1,   "float8_e4m3fnuz",    1,     74,  (1,), "int8",   "uint8"),
    (1,    24,       2,    2,   "bool",               1,     1,   (),   "int8",   "uint8"),
)))
"""The pool: ``covering.construct()``'s output, written out so it reads as a table (a test
checks that they are equal). Every pair of classes of two dimensions (``classes``) the pool
can afford is in some shape; every dtype of ``DTYPES`` and ``INDEX_DTYPES`` is in one."""
# fmt: on


# The TPU interpreter pays for every grid step of 8 columns, launched or idle (about 0.1 s a
# step on a loaded 2-core machine): a shape of hundreds of columns costs an interpreted kernel
# seconds an example. Tests of the interpreted kernel draw from these shapes instead.
INTERPRETER_MAX_COLUMNS = 64
AFFORDABLE_WHEN_INTERPRETED: tuple[Bucket, ...] = tuple(
    b for b in BUCKETS if b.num_slices <= INTERPRETER_MAX_COLUMNS
)
