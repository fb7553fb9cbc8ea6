"""The paged KV-cache update: a Pallas TPU kernel, a pure-JAX fallback and a front door.

For each of the first ``n = total_update_slices`` columns ``(dst, src, len)`` of
``slice_indices``, in order: ``kv_cache_pages[dst:dst+len] = new_kv_tokens[src:src+len]``.
The contract is spelled out in ``oracle``.
"""

__version__ = "0.2.0"

from kvcache._arguments import cdiv  # noqa: E402  (the version is read without importing JAX)
from kvcache.dispatch import update
from kvcache.fallback import kv_cache_update_jax
from kvcache.kernel import kv_cache_update
from kvcache.slot_mapping import slot_mapping
from kvcache.validation import validate
from oracle.contract import ContractViolation

__all__ = [
    "ContractViolation",
    "__version__",
    "cdiv",
    "kv_cache_update",
    "kv_cache_update_jax",
    "slot_mapping",
    "update",
    "validate",
]
