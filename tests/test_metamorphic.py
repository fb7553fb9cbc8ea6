"""Metamorphic properties: rewrites of an update that must not change the resulting cache.

They compare an implementation with itself, not with the oracle, so they hold for any
correct implementation and catch defects an oracle shared with the implementation would
hide. Destinations are disjoint in the general tier, so column order never matters.
Results are compared bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oracle.contract import Update
from properties._src.cases import differing_rows
from properties._src.implementations import call
from properties._src.shapes import affordable
from properties._src.strategies import updates

Column = tuple[int, int, int]

# Each example runs the implementation two to five times; half the profile's examples keep
# the kernel's interpreted runs affordable.
FEWER = settings(max_examples=max(1, settings.default.max_examples // 2))


def real_columns(update: Update) -> list[Column]:
    return [(dst, src, length) for _, dst, src, length in update.columns()]


def with_columns(update: Update, columns: list[Column]) -> Update:
    """``update`` with these real columns; later columns keep whatever they held, as padding."""
    slice_indices = update.slice_indices.copy()
    if columns:
        slice_indices[:, : len(columns)] = np.array(columns, dtype=slice_indices.dtype).T
    count = np.full_like(update.total_update_slices, len(columns))
    return dataclasses.replace(update, slice_indices=slice_indices, total_update_slices=count)


def apply(implementation, update: Update, cache: np.ndarray | None = None) -> np.ndarray:
    """Run ``update`` on ``cache`` (default: its own) and return the new cache."""
    assume(affordable(implementation.name, update.slice_indices.shape[1]))
    if cache is not None:
        update = dataclasses.replace(update, kv_cache_pages=cache)
    return call(implementation, update)


def assert_same_cache(expected: np.ndarray, actual: np.ndarray, what: str) -> None:
    rows = differing_rows(expected, actual)
    assert rows.size == 0, f"{what}: cache rows {rows.tolist()} differ"


@FEWER
@given(update=updates(), data=st.data())
def test_disjoint_updates_commute_and_combine(kvcache_implementation, update, data):
    columns = real_columns(update)
    in_first = data.draw(st.lists(st.booleans(), min_size=len(columns), max_size=len(columns)))
    first = with_columns(update, [c for c, take in zip(columns, in_first, strict=True) if take])
    second = with_columns(
        update, [c for c, take in zip(columns, in_first, strict=True) if not take]
    )
    combined = apply(kvcache_implementation, update)
    first_then_second = apply(kvcache_implementation, second, apply(kvcache_implementation, first))
    second_then_first = apply(kvcache_implementation, first, apply(kvcache_implementation, second))
    assert_same_cache(combined, first_then_second, "first then second vs combined")
    assert_same_cache(combined, second_then_first, "second then first vs combined")


@FEWER
@given(update=updates(), data=st.data())
def test_permuting_real_columns_changes_nothing(kvcache_implementation, update, data):
    permuted = with_columns(update, data.draw(st.permutations(real_columns(update))))
    assert_same_cache(
        apply(kvcache_implementation, update),
        apply(kvcache_implementation, permuted),
        "permuted columns",
    )


@FEWER
@given(update=updates(), data=st.data())
def test_splitting_a_slice_changes_nothing(kvcache_implementation, update, data):
    columns = real_columns(update)
    splittable = [i for i, (_, _, length) in enumerate(columns) if length >= 2]
    assume(splittable and len(columns) < update.slice_indices.shape[1])
    column = data.draw(st.sampled_from(splittable))
    dst, src, length = columns[column]
    head = data.draw(st.integers(1, length - 1))
    halves = [(dst, src, head), (dst + head, src + head, length - head)]
    split = with_columns(update, columns[:column] + halves + columns[column + 1 :])
    assert_same_cache(
        apply(kvcache_implementation, update),
        apply(kvcache_implementation, split),
        f"column {column} split after {head} rows",
    )


@FEWER
@given(update=updates())
def test_applying_an_update_twice_equals_once(kvcache_implementation, update):
    once = apply(kvcache_implementation, update)
    assert_same_cache(once, apply(kvcache_implementation, update, once), "applied twice")
