"""Shared argument handling for the implementations: static checks and the slice count."""

from __future__ import annotations

import jax.numpy as jnp

from oracle.contract import Tier, Update, require


def cdiv(a: int, v: int) -> int:
    """Ceiling division: the number of size-``v`` groups that hold ``a`` items."""
    return (a + v - 1) // v


def check_arguments(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size):
    """Raise ``ContractViolation`` (a ``ValueError``) for malformed arguments.

    Reads only shapes, dtypes and the page size, so it runs at trace time on tracers.
    """
    require(
        Update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size),
        Tier.ARGUMENTS,
    )


def slice_count(total_update_slices) -> jnp.ndarray:
    """``n`` as an int32 scalar, from a count of shape ``[1]`` or ``[]``."""
    return jnp.reshape(total_update_slices, ()).astype(jnp.int32)


def nothing_to_write(new_kv_tokens, slice_indices) -> bool:
    """Whether the shapes alone rule out any write: no columns, or no new tokens (then every
    real column has length 0). Static, so an implementation returns the cache as it is."""
    return new_kv_tokens.shape[0] == 0 or slice_indices.shape[1] == 0
