"""Slice tables and counts of any integer dtype (the contract takes any): both implementations
widen them before any arithmetic, so a slice ending one past the table dtype's largest value
(where arithmetic in that dtype wraps) is copied exactly, the rows past it stay as they were,
and ``validate`` accepts the update."""

from __future__ import annotations

import numpy as np
import pytest

import kvcache
from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.calling.implementations import CALL_MODES, call, load
from properties._src.cases.catalog import bits
from properties._src.domain.buckets import INDEX_DTYPES

PAGE = 4


def ending_past_the_table(table: str, count: str) -> Update:
    """Two slices, the second ending one row past ``max(table)`` (on a page boundary), in a
    cache with a page past it; the count in ``count``."""
    end = min(int(np.iinfo(table).max) + 1, 2**16 + PAGE)  # uint32 and int32: a large cache
    rows = end + PAGE
    columns = np.array([[0, 0, 2], [end - 3, 2, 3], [7, 7, 7]], dtype=np.int64).T
    cache = -np.arange(1, rows + 1, dtype=np.int32).reshape(rows, 1, 1)
    return Update(
        new_kv_tokens=np.arange(1, 6, dtype=np.int32).reshape(5, 1, 1),
        slice_indices=columns.astype(table),
        kv_cache_pages=cache,
        total_update_slices=np.array([2], dtype=count),
        page_size=PAGE,
    )


@pytest.mark.parametrize("spec", ["kvcache:kv_cache_update_jax", "kvcache:kv_cache_update"])
@pytest.mark.parametrize("table", INDEX_DTYPES)
def test_a_slice_ending_past_the_tables_range_is_copied_exactly(spec, table):
    count = INDEX_DTYPES[(INDEX_DTYPES.index(table) + 1) % len(INDEX_DTYPES)]
    update = ending_past_the_table(table, count)
    kvcache.validate(*update.arrays(), page_size=PAGE)
    expected = reference_update(*update.arrays(), page_size=PAGE)
    for mode in CALL_MODES:
        assert np.array_equal(bits(call(load(spec), update, mode)), bits(expected)), mode
