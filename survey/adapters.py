"""Adapters: a peer's update function called as the harness's protocol
``f(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size)``.

Thin on purpose: argument order and names, the peer's block size, the count's shape, an
ambient mesh. No data is padded or converted; shapes the peer cannot take are kept out by
constraints instead.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from survey.peers import Peer


def set_ambient_mesh(axis: str | None) -> None:
    """Make a one-device mesh with one axis named ``axis`` this process's ambient mesh (none
    without an axis). Set once, globally: ``jax.set_mesh`` cannot run under ``jax.jit``, where
    the harness also calls the peer."""
    if axis is not None:
        jax.set_mesh(jax.sharding.Mesh(np.array(jax.devices()[:1]), (axis,)))


def adapt(peer: Peer, function: Callable) -> Callable:
    """``function`` (the peer's own) behind the harness's protocol, as ``peer`` says."""
    set_ambient_mesh(peer.mesh_axis)

    def mapped(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        count = total_update_slices.reshape(1) if peer.count_as_one else total_update_slices
        return function(
            new_kv_tokens,
            slice_indices,
            kv_cache_pages,
            count,
            page_size=page_size,
            **peer.keywords,
        )

    call = jax.jit(mapped, static_argnames="page_size") if peer.jit else mapped

    def update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        return call(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        )

    update.__name__ = update.__qualname__ = peer.key
    update.__doc__ = f"{peer.package} {peer.version} {peer.function}, as the harness calls it."
    return update
