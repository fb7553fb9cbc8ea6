"""What the arrays of a drawn update hold: the bit patterns worth copying, random bits, and
rows labelled so a misplaced one is easy to spot."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np


def _unique(bits: np.ndarray) -> np.ndarray:
    """The distinct values of ``bits``, in their first order."""
    return bits[np.sort(np.unique(bits, return_index=True)[1])]


def special_values(dtype: np.dtype) -> np.ndarray:
    """Bit patterns worth copying, each once: for floats signed zeros, infinities, NaNs with
    payloads and both signs, extremes and subnormals (whichever the format has: float8
    e4m3fn has no infinity, the ``fnuz`` formats one NaN and no -0.0); for integers 0, +-1
    and the extremes; for bool both values."""
    unsigned = np.dtype(f"u{dtype.itemsize}")
    if dtype == np.bool_:
        return np.array([False, True])
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        values = np.array([0, 1, -1, limits.min, limits.max], dtype=np.int64).astype(dtype)
        return _unique(values.view(unsigned)).view(dtype)
    info = jnp.finfo(dtype)
    extremes = [float(v) for v in (info.max, -info.max, info.tiny, info.smallest_subnormal)]
    named = [0.0, -0.0, np.inf, -np.inf, np.nan, *extremes]
    bits = np.array(named).astype(dtype).view(unsigned)
    nan = int(bits[4])
    quiet_bit = 1 << max(info.nmant - 1, 0)
    sign_bit = 1 << (8 * dtype.itemsize - 1)
    payloads = np.array(
        [
            nan | 1,
            (nan & ~quiet_bit) | 1,
            nan | sign_bit | 0b101,
            nan | (quiet_bit - 1),
            nan ^ sign_bit,
        ],
        dtype=unsigned,
    )
    payloads = payloads[np.isnan(payloads.view(dtype).astype(np.float32))]  # NaNs only
    return _unique(np.concatenate([bits, payloads])).view(dtype)


def random_bits(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Uniformly random valid bit patterns: any for numbers, 0 or 1 for bool."""
    unsigned = np.dtype(f"u{dtype.itemsize}")
    top = 1 if dtype == np.bool_ else np.iinfo(unsigned).max
    return rng.integers(0, top, size=shape, dtype=unsigned, endpoint=True)


def row_ids(shape: tuple[int, ...], dtype, sign: int) -> np.ndarray:
    """Labelled rows: row ``r``'s first element holds ``sign * (r + 1)``, so a misplaced row is
    easy to spot, and its other elements the dtype's special values in turn, NaN payloads
    first, starting one further along each row, so even the simplest update copies them."""
    return _row_ids(tuple(shape), np.dtype(jnp.dtype(dtype)), sign).copy()


@functools.lru_cache(maxsize=8)
def _row_ids(shape: tuple[int, ...], dtype: np.dtype, sign: int) -> np.ndarray:
    """``row_ids``, built once per shape (a search draws it on every example of a shape)."""
    rows, width = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    with np.errstate(over="ignore"):  # ids past a narrow float's range become infinities
        ids = (sign * (np.arange(rows, dtype=np.int64) + 1)).astype(dtype)
    specials = special_values(dtype)
    if dtype != np.bool_ and np.issubdtype(dtype, np.floating):
        specials = specials[np.argsort(~np.isnan(specials.astype(np.float32)), kind="stable")]
    turn = (np.arange(rows)[:, None] + np.arange(width - 1)[None, :]) % len(specials)
    array = np.empty((rows, width), dtype)
    array[:, 0] = ids
    array[:, 1:] = specials[turn]
    return array.reshape(shape)
