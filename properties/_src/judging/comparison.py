"""How a result is compared with the oracle: ``bits`` (the default) or ``values``.

``bits``: every bit pattern must match, NaN payloads and the sign of zero included (a copy
is exact). ``values``: any NaN equals any NaN and +0.0 equals -0.0; everything else must still
match exactly. Every property checks copies, so ``values`` is ``bits`` on canonical arrays:
each NaN made the one quiet NaN and each zero made +0.0, in the inputs and in the result.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from oracle.contract import Update
from properties._src.domain.comparisons import COMPARISONS


def require_comparison(compare: str) -> str:
    """``compare`` itself, or ``ValueError`` naming the choices."""
    if compare not in COMPARISONS:
        raise ValueError(f"unknown comparison {compare!r}; choose one of {', '.join(COMPARISONS)}")
    return compare


def is_floating(dtype: np.dtype) -> bool:
    """Whether ``dtype`` has NaNs and signed zeros (bfloat16 included, which NumPy misses)."""
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def canonical(array: np.ndarray, compare: str) -> np.ndarray:
    """``array`` as ``compare`` sees it: itself for bits; NaNs and zeros made one for values."""
    if compare == "bits" or not is_floating(array.dtype):
        return array
    result = array.copy()  # of the same class, with what it remembers (a mesh's shardings)
    if hasattr(array, "__dict__"):
        result.__dict__.update(array.__dict__)
    with np.errstate(invalid="ignore"):  # signalling NaNs are what we are looking for
        result[np.isnan(result)] = np.nan
        result[result == 0] = 0
    return result


def canonical_update(update: Update, compare: str) -> Update:
    """``update`` with its tokens and cache made canonical for ``compare``."""
    if compare == "bits":
        return update
    return dataclasses.replace(
        update,
        new_kv_tokens=canonical(update.new_kv_tokens, compare),
        kv_cache_pages=canonical(update.kv_cache_pages, compare),
    )
