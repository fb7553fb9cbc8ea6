"""``update``: the front door, choosing the kernel on a TPU and the fallback elsewhere."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kvcache import validation
from kvcache.fallback import kv_cache_update_jax
from kvcache.kernel import TPU_LANES, kv_cache_update


def _platform(array) -> str:
    """Where ``array`` lives; traced (inside ``jax.jit``) it has no devices yet, and the
    program runs on JAX's default backend."""
    devices = getattr(array, "devices", None)
    if devices is None or isinstance(array, jax.core.Tracer):
        return jax.default_backend()
    return next(iter(devices())).platform


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
    path, which has no layout rule, and so does a bool cache (JAX 0.10's Mosaic lowering refuses
    DMAs of bool). ``kv_cache_pages`` is donated. With ``validate=True`` the arguments are
    checked first and a refused call raises before touching (or donating) the cache. A cache
    sharded over a mesh (a ``NamedSharding``) is updated shard by shard, each with the path
    chosen here (``kvcache.sharded``).
    """
    if validate:
        validation.validate(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        )
    lane_aligned = kv_cache_pages.shape[-1] % TPU_LANES == 0
    copyable = kv_cache_pages.dtype != jnp.bool_
    use_kernel = _platform(kv_cache_pages) == "tpu" and lane_aligned and copyable
    implementation = kv_cache_update if use_kernel else kv_cache_update_jax
    return implementation(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )
