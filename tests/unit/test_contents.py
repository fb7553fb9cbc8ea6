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


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, ml_dtypes.bfloat16, np.float32, np.int64])
@pytest.mark.parametrize("shape", [(0, 4, 2), (1, 1, 1), (5, 3, 7), (1000, 2, 3)])
def test_random_bits_fill_the_shape_with_any_pattern_and_bools_with_zero_or_one(dtype, shape):
    dtype = np.dtype(dtype)
    array = random_bits(np.random.default_rng(1), shape, dtype)
    assert array.shape == shape and array.dtype == np.dtype(f"u{dtype.itemsize}")
    assert array.flags.writeable  # with_special_values writes into it
    if dtype == np.bool_:
        assert set(np.unique(array).tolist()) <= {0, 1}
        if array.size >= 1000:
            assert set(np.unique(array).tolist()) == {0, 1}
    elif array.size >= 1000:  # every byte value, in every byte of an element
        for byte in array.reshape(-1, 1).view(np.uint8).T:
            assert len(np.unique(byte)) == 256
