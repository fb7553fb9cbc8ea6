"""Static shapes the strategies draw from.

Everything here forces a recompile when it changes, so Hypothesis picks one of a few
buckets and draws runtime values (indices, count, data) freely inside it. Even the count's
shape is static: buckets alternate between ``[1]`` and ``[]``, so each compiles once. The first bucket
is small and readable: it is where counterexamples shrink to.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from oracle.contract import Update


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
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(jnp.dtype(self.dtype))


# fmt: off
BUCKETS: tuple[Bucket, ...] = tuple(Bucket(*row) for row in (
    # page  pages heads head_dim  dtype       tokens slices count
    (4,     4,    1,    2,        "float32",  8,     4,     (1,)),
    (1,     16,   2,    4,        "int8",     12,    8,     ()),
    (33,    5,    2,    8,        "bfloat16", 70,    12,    (1,)),
    (16,    8,    4,    128,      "float16",  40,    8,     ()),
    (256,   2,    1,    4,        "float32",  300,   5,     (1,)),
    (32,    256,  1,    2,        "bfloat16", 100,   16,    ()),
    (7,     12,   2,    16,       "float32",  30,    11,    (1,)),
    (64,    1,    2,    8,        "int8",     64,    3,     ()),
    (128,   64,   1,    1,        "float16",  200,   9,     (1,)),
    (8,     6,    8,    128,      "bfloat16", 24,    10,    ()),
))
# fmt: on
