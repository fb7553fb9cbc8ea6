"""What the arrays of a drawn update hold: the bit patterns worth copying, random bits, and
rows labelled so a misplaced one is easy to spot."""

from __future__ import annotations

import functools
import math

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
    """Uniformly random valid bit patterns: any for numbers, 0 or 1 for bool. Cut from the bit
    generator's raw 64-bit words (on a 32 MiB cache half the time of ``rng.integers``)."""
    unsigned = np.dtype(f"u{dtype.itemsize}")
    count = math.prod(shape)
    words = rng.bit_generator.random_raw(-(-count * unsigned.itemsize // 8))
    array = words.view(unsigned)[:count].reshape(shape)
    return array & 1 if dtype == np.bool_ else array


# Which elements ``with_special_values`` replaces, and by what, is drawn for this many elements
# and repeats along the array: a prime, so the pattern lines up with no row or page.
SPECIAL_PERIOD = 4099


def with_special_values(rng: np.random.Generator, bits: np.ndarray, dtype) -> np.ndarray:
    """``bits`` (``random_bits`` of ``dtype``) with about half its elements replaced by the
    dtype's special values, in place. Drawn for ``SPECIAL_PERIOD`` elements and repeated: a
    choice per element is a gather over the whole array (0.45 s on a 32 MiB cache, not 0.07 s)."""
    flat = bits.reshape(-1)
    if flat.size == 0:
        return bits
    period = min(SPECIAL_PERIOD, flat.size)
    pool = special_values(np.dtype(dtype)).view(bits.dtype)
    chosen = pool[rng.integers(0, len(pool), size=period, dtype=np.uint8)]
    where = rng.integers(0, 2, size=period, dtype=np.uint8) == 1
    whole = flat.size // period * period
    flat[:whole].reshape(-1, period)[:, where] = chosen[where]
    tail, tail_where = flat[whole:], where[: flat.size - whole]
    tail[tail_where] = chosen[: len(tail)][tail_where]
    return bits


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
    array = np.empty((rows, width), dtype)
    array[:, 0] = ids
    # Row r holds specials[(r + j) % k] at element j + 1: rows r and r + k are alike, so the k
    # distinct rows are built once and written strided (not an index per element).
    k = len(specials)
    distinct = specials[(np.arange(k)[:, None] + np.arange(width - 1)[None, :]) % k]
    for first in range(min(k, rows)):
        array[first::k, 1:] = distinct[first]
    return array.reshape(shape)
