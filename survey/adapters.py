"""Adapters: a peer's update function called as the harness's protocol
``f(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size)``.

Thin on purpose: argument order and names, the peer's block size, the count's shape, an
ambient mesh. No data is padded or converted; shapes the peer cannot take are kept out by
constraints instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import numpy as np

from survey.peers import Peer


def ambient_mesh(axis: str | None) -> contextlib.AbstractContextManager:
    """A one-device mesh with one axis named ``axis`` set as the ambient mesh (none without
    an axis)."""
    if axis is None:
        return contextlib.nullcontext()
    return jax.set_mesh(jax.sharding.Mesh(np.array(jax.devices()[:1]), (axis,)))


def adapt(peer: Peer, function: Callable) -> Callable:
    """``function`` (the peer's own) behind the harness's protocol, as ``peer`` says."""

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
        with ambient_mesh(peer.mesh_axis):
            return call(
                new_kv_tokens,
                slice_indices,
                kv_cache_pages,
                total_update_slices,
                page_size=page_size,
            )

    update.__name__ = update.__qualname__ = peer.key
    update.__doc__ = f"{peer.package} {peer.version} {peer.function}, as the harness calls it."
    return update
