"""Explicit examples every property run checks first: the known defects of the lineage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.contract import Tier, Update


@dataclass(frozen=True)
class Regression:
    """A named update that once broke an implementation, and the strictest tier it belongs to."""

    name: str
    tier: Tier
    update: Update


def _update(columns, *, num_slices, num_real, page_size=4, pages=4, tokens=8) -> Update:
    slice_indices = np.zeros((3, num_slices), dtype=np.int32)
    slice_indices[:, : len(columns)] = np.array(columns, dtype=np.int32).T
    return Update(
        new_kv_tokens=np.arange(1, tokens + 1, dtype=np.float32).reshape(tokens, 1, 1),
        slice_indices=slice_indices,
        kv_cache_pages=-np.arange(1, pages * page_size + 1, dtype=np.float32).reshape(-1, 1, 1),
        total_update_slices=np.array([num_real], dtype=np.int32),
        page_size=page_size,
    )


REGRESSIONS: tuple[Regression, ...] = (
    # The seed's fallback reads and writes a page-sized window; JAX clamps a window that would
    # run past the cache's end, so rows 13..14 land on 12..13 (tpu-inference#2366).
    Regression(
        "window-clamped-at-cache-end",
        Tier.SERVING,
        _update([(13, 0, 2)], num_slices=4, num_real=1),
    ),
    # The seed's kernel copies every column of the last grid step, padding included.
    Regression(
        "padding-in-last-grid-step",
        Tier.SERVING,
        _update([(0, 0, 1), (8, 1, 2)], num_slices=4, num_real=1),
    ),
)
