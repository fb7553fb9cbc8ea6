"""How a result is compared with the oracle: ``bits`` (the default) or ``values``.

``bits``: every bit pattern must match, NaN payloads and the sign of zero included (a copy
is exact). ``values``: any NaN equals any NaN and +0.0 equals -0.0; everything else must still
match exactly. Every property checks copies, so ``values`` is ``bits`` on canonical arrays:
each NaN made the one quiet NaN and each zero made +0.0, in the inputs and in the result.

One exception to ``bits``, the platform's and not the implementation's: where the backend's
own scatter does not keep a dtype's NaN payloads (``quiets_nan_payloads``), no writer built on
a scatter can, so NaNs of that dtype are compared by value; every other bit still is by bits.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from kvcache.scatter_probe import bits_not_kept
from oracle.contract import Update
from properties._src.domain.buckets import DTYPES
from properties._src.domain.comparisons import COMPARISONS

NAN_PAYLOAD, SIGNED_ZERO = "nan-payload", "signed-zero"
VALUE_EQUAL = (NAN_PAYLOAD, SIGNED_ZERO)  # differences that compare equal by value


def require_comparison(compare: str) -> str:
    """``compare`` itself, or ``ValueError`` naming the choices."""
    if compare not in COMPARISONS:
        raise ValueError(f"unknown comparison {compare!r}; choose one of {', '.join(COMPARISONS)}")
    return compare


def is_floating(dtype: np.dtype) -> bool:
    """Whether ``dtype`` has NaNs and signed zeros (bfloat16 included, which NumPy misses)."""
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def quiets_nan_payloads(dtype) -> bool:
    """Whether the default backend's own scatter changes some NaN of ``dtype`` (its probe,
    ``kvcache.scatter_probe``, runs once per process, backend and dtype)."""
    dtype = np.dtype(jnp.dtype(dtype))
    changed = np.array(bits_not_kept(jax.default_backend(), dtype), f"u{dtype.itemsize}")
    with np.errstate(invalid="ignore"):
        return bool(np.isnan(changed.view(dtype)).any())


def platform() -> dict:
    """What the platform makes ``bits`` compare by value: the jaxlib version, the backend,
    and each drawn dtype whose NaN payloads the backend's scatter does not keep."""
    return {
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "nan_payloads_quieted": [name for name in DTYPES if quiets_nan_payloads(name)],
    }


def platform_phrase(platform: dict, compare: str) -> str:
    """``platform()`` in words, for a header: what its scatter does to NaN payloads and,
    under ``bits``, what is therefore compared by value."""
    where = f"platform: jaxlib {platform['jaxlib']} on {platform['backend']}"
    quieted = platform["nan_payloads_quieted"]
    if not quieted:
        return f"{where}, whose scatter keeps every NaN payload"
    phrase = f"{where}, whose scatter quiets the NaN payloads of {', '.join(quieted)}"
    return f"{phrase}: their NaNs are compared by value" if compare == "bits" else phrase


def by_value(compare: str, dtype) -> tuple[str, ...]:
    """The differences of ``VALUE_EQUAL`` that ``compare`` lets pass in ``dtype``: both for
    values; for bits, NaN payloads where the backend quiets them, nothing elsewhere."""
    if not is_floating(dtype):
        return ()
    if compare == "values":
        return VALUE_EQUAL
    return (NAN_PAYLOAD,) if quiets_nan_payloads(dtype) else ()


def canonical(array: np.ndarray, compare: str) -> np.ndarray:
    """``array`` as ``compare`` sees it: its NaNs made one and its zeros made +0.0 where
    ``by_value`` says so, itself where it says nothing."""
    excused = by_value(compare, array.dtype)
    if not excused:
        return array
    result = array.copy()  # of the same class, with what it remembers (a mesh's shardings)
    if hasattr(array, "__dict__"):
        result.__dict__.update(array.__dict__)
    with np.errstate(invalid="ignore"):  # signalling NaNs are what we are looking for
        if NAN_PAYLOAD in excused:
            result[np.isnan(result)] = np.nan
        if SIGNED_ZERO in excused:
            result[result == 0] = 0
    return result


def canonical_update(update: Update, compare: str) -> Update:
    """``update`` with its tokens and cache made canonical for ``compare``."""
    return dataclasses.replace(
        update,
        new_kv_tokens=canonical(update.new_kv_tokens, compare),
        kv_cache_pages=canonical(update.kv_cache_pages, compare),
    )
