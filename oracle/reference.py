"""The update itself, one slice at a time, in NumPy."""

from __future__ import annotations

import numpy as np

from oracle.contract import Tier, Update, require


def reference_update(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size: int
) -> np.ndarray:
    """Return a new cache: for each real column in order, ``cache[dst:dst+len] = new[src:src+len]``.

    Input outside the general tier raises ``ContractViolation`` rather than being clipped,
    because NumPy slicing would silently shorten an out-of-range slice.
    """
    update = Update.of(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )
    require(update, Tier.GENERAL)
    cache = update.kv_cache_pages.copy()
    for _, dst, src, length in update.columns():
        cache[dst : dst + length] = update.new_kv_tokens[src : src + length]
    return cache


def written_rows(update: Update) -> np.ndarray:
    """A boolean mask over cache rows: True where some real column writes."""
    mask = np.zeros(update.kv_cache_pages.shape[0], dtype=bool)
    for _, dst, _, length in update.columns():
        mask[dst : dst + length] = True
    return mask
