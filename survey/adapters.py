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


def one_device_mesh(axis: str) -> jax.sharding.Mesh:
    """A mesh of the first device with one axis named ``axis``."""
    return jax.sharding.Mesh(np.array(jax.devices()[:1]), (axis,))


def adapt(peer: Peer, function: Callable) -> Callable:
    """``function`` (the peer's own) behind the harness's protocol, as ``peer`` says."""

    def update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        count = total_update_slices.reshape(1) if peer.count_as_one else total_update_slices
        ambient = (
            jax.set_mesh(one_device_mesh(peer.mesh_axis))
            if peer.mesh_axis
            else contextlib.nullcontext()
        )
        with ambient:
            return function(
                new_kv_tokens,
                slice_indices,
                kv_cache_pages,
                count,
                page_size=page_size,
                **peer.keywords,
            )

    update.__name__ = update.__qualname__ = peer.key
    update.__doc__ = f"{peer.package} {peer.version} {peer.function}, as the harness calls it."
    return update
