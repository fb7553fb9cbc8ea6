"""What drawn arrays hold: labelled rows, and random bits half replaced by special values."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from properties._src.drawing.contents import (
    SPECIAL_PERIOD,
    random_bits,
    row_ids,
    special_values,
    with_special_values,
)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, ml_dtypes.float8_e4m3fn])
def test_row_ids_label_each_row_and_turn_the_special_values_along_it(dtype):
    dtype = np.dtype(dtype)
    specials = special_values(dtype)
    rows, k = 3 * len(specials) + 2, len(specials)
    array = row_ids((rows, 2, 3), dtype, -1).reshape(rows, 6)
    unsigned = np.dtype(f"u{dtype.itemsize}")
    labels = (-(np.arange(rows) + 1)).astype(dtype)
    assert np.array_equal(array[:, 0].copy().view(unsigned), labels.view(unsigned))
    nan_first = specials
    if np.issubdtype(dtype, np.floating):
        nan_first = specials[np.argsort(~np.isnan(specials.astype(np.float32)), kind="stable")]
    for r in range(rows):
        expected = nan_first[(r + np.arange(5)) % k]
        assert np.array_equal(array[r, 1:].view(unsigned), expected.view(unsigned)), r


@pytest.mark.parametrize("size", [0, 7, SPECIAL_PERIOD, 3 * SPECIAL_PERIOD + 11])
def test_about_half_the_random_bits_become_special_values_the_rest_stay(size):
    dtype = np.dtype(np.float32)
    rng = np.random.default_rng(0)
    bits = random_bits(rng, (size, 1, 1), dtype)
    before = bits.copy()
    after = with_special_values(rng, bits, dtype)
    assert after is bits and after.shape == (size, 1, 1)
    changed = after != before
    pool = special_values(dtype).view(bits.dtype)
    assert np.isin(after[changed], pool).all()
    if size >= 2 * SPECIAL_PERIOD:  # the replaced places repeat every period
        replaced = np.isin(after.reshape(-1), pool)
        assert 0.4 < replaced.mean() < 0.6, replaced.mean()
        first, second = replaced[:SPECIAL_PERIOD], replaced[SPECIAL_PERIOD : 2 * SPECIAL_PERIOD]
        assert np.array_equal(first, second)
