"""Static shapes the strategies draw from.

Everything here forces a recompile when it changes, so Hypothesis picks one of a few
buckets and draws runtime values (indices, count, data) freely inside it. The first bucket
is small and readable: it is where counterexamples shrink to.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np


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

    @property
    def cache_rows(self) -> int:
        return self.page_size * self.num_pages

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(jnp.dtype(self.dtype))


BUCKETS: tuple[Bucket, ...] = (
    Bucket(
        page_size=4, num_pages=4, heads=1, head_dim=2, dtype="float32", num_tokens=8, num_slices=4
    ),
    Bucket(
        page_size=1, num_pages=16, heads=2, head_dim=4, dtype="int8", num_tokens=12, num_slices=8
    ),
    Bucket(
        page_size=33,
        num_pages=5,
        heads=2,
        head_dim=8,
        dtype="bfloat16",
        num_tokens=70,
        num_slices=12,
    ),
    Bucket(
        page_size=16,
        num_pages=8,
        heads=4,
        head_dim=128,
        dtype="float16",
        num_tokens=40,
        num_slices=8,
    ),
    Bucket(
        page_size=256,
        num_pages=2,
        heads=1,
        head_dim=4,
        dtype="float32",
        num_tokens=300,
        num_slices=5,
    ),
    Bucket(
        page_size=32,
        num_pages=256,
        heads=1,
        head_dim=2,
        dtype="bfloat16",
        num_tokens=100,
        num_slices=16,
    ),
    Bucket(
        page_size=7,
        num_pages=12,
        heads=2,
        head_dim=16,
        dtype="float32",
        num_tokens=30,
        num_slices=11,
    ),
    Bucket(
        page_size=64, num_pages=1, heads=2, head_dim=8, dtype="int8", num_tokens=64, num_slices=3
    ),
    Bucket(
        page_size=128,
        num_pages=64,
        heads=1,
        head_dim=1,
        dtype="float16",
        num_tokens=200,
        num_slices=9,
    ),
    Bucket(
        page_size=8,
        num_pages=6,
        heads=8,
        head_dim=128,
        dtype="bfloat16",
        num_tokens=24,
        num_slices=10,
    ),
)
