"""``update``: the front door, choosing the kernel on a TPU and the fallback elsewhere."""

from __future__ import annotations

import jax

from kvcache import validation
from kvcache.fallback import kv_cache_update_jax
from kvcache.kernel import TPU_LANES, kv_cache_update


def _platform(array) -> str:
    devices = getattr(array, "devices", None)
    return next(iter(devices())).platform if devices is not None else jax.default_backend()


def update(
    new_kv_tokens,
    slice_indices,
    kv_cache_pages,
    total_update_slices,
    *,
    page_size: int = 32,
    validate: bool = False,
):
    """Write new tokens into the paged cache: the Pallas kernel on a TPU, pure JAX elsewhere.

    On a TPU, a head_dim that is not a multiple of the lane width (128) also takes the pure-JAX
    path, which has no layout rule. ``kv_cache_pages`` is donated. With ``validate=True`` the arguments are checked first and
    a refused call raises before touching (or donating) the cache. A cache sharded over a mesh
    (a ``NamedSharding``) is updated shard by shard, each with the path chosen here
    (``kvcache.sharded``).
    """
    if validate:
        validation.validate(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        )
    lane_aligned = kv_cache_pages.shape[-1] % TPU_LANES == 0
    use_kernel = _platform(kv_cache_pages) == "tpu" and lane_aligned
    implementation = kv_cache_update if use_kernel else kv_cache_update_jax
    return implementation(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )
