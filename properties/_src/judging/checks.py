"""The properties every result must have, and the bit-exact comparisons they are built on.

A ``Property`` checks one implementation's result on one update; ``cases`` turns each into a
case per tier, and the sequence cases check every step they run with ``MATCHES_ORACLE``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from oracle.contract import Tier, Update
from oracle.reference import reference_update, written_rows
from properties._src.calling.placement import sharding_preserved
from properties._src.judging.comparison import canonical, canonical_update


def bits(array: np.ndarray) -> np.ndarray:
    """The array's bit patterns, so NaN payloads and -0.0 compare exactly."""
    return np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}")


def assert_same_layout(expected: np.ndarray, actual: np.ndarray) -> None:
    """The result has the cache's shape and dtype."""
    assert (actual.shape, actual.dtype) == (expected.shape, expected.dtype), (
        f"result is {actual.dtype}{list(actual.shape)}; "
        f"the cache is {expected.dtype}{list(expected.shape)}"
    )


MOST_RANGES = 8
"""Ranges named in a list of rows; the rest are counted."""


def ranges(indices) -> str:
    """``[3, 4, 5, 9]`` as ``"3-5, 9"`` (past ``MOST_RANGES`` ranges, the rest are counted);
    a list of millions of rows is told as briefly, and as fast when it is sorted already."""
    rows = np.asarray(indices, dtype=np.int64)
    if (np.diff(rows) <= 0).any():  # not yet sorted and distinct
        rows = np.unique(rows)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(rows) != 1) + 1))
    ends = np.append(starts[1:], len(rows)) - 1
    parts = [(int(rows[a]), int(rows[b])) for a, b in zip(starts[:MOST_RANGES], ends, strict=False)]
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)
    if len(starts) > MOST_RANGES:
        text += f" and {len(rows) - starts[MOST_RANGES]} more in {len(starts) - MOST_RANGES} ranges"
    return text


def differing_rows(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Indices of cache rows whose bits differ (after checking the layouts agree)."""
    assert_same_layout(expected, actual)
    differs = bits(expected) != bits(actual)
    return np.flatnonzero(differs.any(axis=tuple(range(1, differs.ndim))))


@dataclass(frozen=True)
class Property:
    """A named check of one implementation's result on one update."""

    name: str
    tiers: tuple[Tier, ...]
    check: Callable[[Update, np.ndarray], None]
    # A result equal to the oracle's has this property (the oracle keeps the cache's layout
    # and every row no real column writes): judged on the same result, it needs no check.
    implied_by_oracle: bool = False

    def __str__(self) -> str:
        return self.name

    def verify(self, update: Update, actual: np.ndarray, compare: str = "bits") -> None:
        """``check``, comparing as ``compare`` says (``comparison.COMPARISONS``)."""
        self.check(canonical_update(update, compare), canonical(actual, compare))


def _matches_oracle(update: Update, actual: np.ndarray) -> None:
    expected = reference_update(
        update.new_kv_tokens,
        update.slice_indices,
        update.kv_cache_pages,
        update.total_update_slices,
        page_size=update.page_size,
    )
    rows = differing_rows(expected, actual)
    assert rows.size == 0, f"cache rows {ranges(rows)} differ from the oracle"


def _untouched_rows_unchanged(update: Update, actual: np.ndarray) -> None:
    assert_same_layout(update.kv_cache_pages, actual)
    untouched = ~written_rows(update)
    rows = differing_rows(update.kv_cache_pages[untouched], actual[untouched])
    assert rows.size == 0, (
        f"cache rows {ranges(np.flatnonzero(untouched)[rows])} changed but no real column writes them"
    )


def _shape_and_dtype_preserved(update: Update, actual: np.ndarray) -> None:
    assert_same_layout(update.kv_cache_pages, actual)


BOTH_TIERS = (Tier.GENERAL, Tier.SERVING)

MATCHES_ORACLE = Property("matches-oracle", BOTH_TIERS, _matches_oracle)

PROPERTIES: tuple[Property, ...] = (
    MATCHES_ORACLE,
    Property("untouched-rows-unchanged", BOTH_TIERS, _untouched_rows_unchanged, True),
    Property("shape-and-dtype-preserved", BOTH_TIERS, _shape_and_dtype_preserved, True),
)

# Checked only on a mesh (``--mesh``), where the result has a sharding to keep.
MESH_PROPERTIES: tuple[Property, ...] = (
    Property("sharding-preserved", BOTH_TIERS, sharding_preserved),
)
