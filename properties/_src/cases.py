"""The properties every implementation must have, and the cases they make: one per
(property, tier). ``CASES`` is the one list that pytest, ``kvcache-check``, the Python API,
the quality gate and the benchmarks all run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from oracle.contract import Tier, Update
from oracle.reference import reference_update, written_rows
from properties._src.comparison import canonical, canonical_update
from properties._src.placement import sharding_preserved


def bits(array: np.ndarray) -> np.ndarray:
    """The array's bit patterns, so NaN payloads and -0.0 compare exactly."""
    return np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}")


def assert_same_layout(expected: np.ndarray, actual: np.ndarray) -> None:
    """The result has the cache's shape and dtype."""
    assert (actual.shape, actual.dtype) == (expected.shape, expected.dtype), (
        f"result is {actual.dtype}{list(actual.shape)}; "
        f"the cache is {expected.dtype}{list(expected.shape)}"
    )


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
    assert rows.size == 0, f"cache rows {rows.tolist()} differ from the oracle"


def _untouched_rows_unchanged(update: Update, actual: np.ndarray) -> None:
    assert_same_layout(update.kv_cache_pages, actual)
    untouched = ~written_rows(update)
    rows = differing_rows(update.kv_cache_pages[untouched], actual[untouched])
    assert rows.size == 0, (
        f"cache rows {np.flatnonzero(untouched)[rows].tolist()} changed but no real column writes them"
    )


def _shape_and_dtype_preserved(update: Update, actual: np.ndarray) -> None:
    assert_same_layout(update.kv_cache_pages, actual)


BOTH_TIERS = (Tier.GENERAL, Tier.SERVING)

PROPERTIES: tuple[Property, ...] = (
    Property("matches-oracle", BOTH_TIERS, _matches_oracle),
    Property("untouched-rows-unchanged", BOTH_TIERS, _untouched_rows_unchanged),
    Property("shape-and-dtype-preserved", BOTH_TIERS, _shape_and_dtype_preserved),
)


@dataclass(frozen=True)
class Case:
    """One property checked on one tier."""

    prop: Property
    tier: Tier

    @property
    def id(self) -> str:
        """``property-tier``, as pytest ids and reports name it."""
        return f"{self.prop.name}-{self.tier.name.lower()}"


CASES: tuple[Case, ...] = tuple(Case(prop, tier) for prop in PROPERTIES for tier in prop.tiers)

# Checked only on a mesh (``--mesh``), where the result has a sharding to keep.
MESH_PROPERTIES: tuple[Property, ...] = (
    Property("sharding-preserved", BOTH_TIERS, sharding_preserved),
)
MESH_CASES: tuple[Case, ...] = tuple(
    Case(prop, tier) for prop in MESH_PROPERTIES for tier in prop.tiers
)


def all_cases(on_mesh: bool) -> tuple[Case, ...]:
    """The cases to check: ``CASES``, and on a mesh ``MESH_CASES`` too."""
    return CASES + MESH_CASES if on_mesh else CASES
