"""``validate``: check an update against the contract (the general tier, or the serving tier
when asked) before running it."""

from __future__ import annotations

import jax
import numpy as np

from oracle.contract import Tier, Update, require


def _shaped(array):
    """Keep device arrays where they are (only shape and dtype are read); lists become arrays."""
    return array if hasattr(array, "shape") and hasattr(array, "dtype") else np.asarray(array)


def validate(
    new_kv_tokens,
    slice_indices,
    kv_cache_pages,
    total_update_slices,
    *,
    page_size: int,
    tier: Tier = Tier.GENERAL,
):
    """Raise ``ContractViolation`` (a ``ValueError``) naming each broken rule and its column.

    Accepts everything ``tier`` allows, including garbage in padding columns: by default the
    general tier (an update with no real columns or no new tokens included); with
    ``tier=Tier.SERVING`` also the rules serving runners keep (``oracle.contract``). Only
    the indices and the count are read on the host (the tokens and the cache are checked by
    shape and dtype), so they must be concrete: validate outside ``jax.jit``.
    """
    for name, array in (
        ("slice_indices", slice_indices),
        ("total_update_slices", total_update_slices),
    ):
        if isinstance(array, jax.core.Tracer):
            raise TypeError(f"validate reads {name} on the host; call it outside jax.jit")
    require(
        Update(
            _shaped(new_kv_tokens),
            np.asarray(slice_indices),
            _shaped(kv_cache_pages),
            np.asarray(total_update_slices),
            page_size,
        ),
        tier,
    )
