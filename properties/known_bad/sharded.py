"""Deliberately broken sharded updates: the mesh run (``--mesh``) must reject each.

Each one is correct on a single device, so only a run on a mesh tells it from the real
thing. ``SHARDED`` names them as ``MODULE:ATTR``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from kvcache import sharded
from kvcache.fallback import kv_cache_update_jax

_single_device = kv_cache_update_jax.single_device  # the jitted fallback, not mesh-aware

StepMaker = Callable[[sharded.Layout, int], sharded.PerShard]


@functools.cache
def _program(make_step: StepMaker, layout: sharded.Layout, cache_rows: int, page_size: int):
    step = make_step(layout, page_size)
    return jax.jit(sharded.shard_mapped(layout, step, cache_rows, page_size))


def _shard_by_shard(make_step: StepMaker, doc: str) -> Callable:
    """An update running ``make_step``'s per-shard step on a sharded cache (the plain
    fallback on an unsharded one)."""

    def implementation(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
    ):
        arguments = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
        layout = sharded.layout_of(kv_cache_pages)
        if layout is None:
            return _single_device(*arguments, page_size=page_size)
        return _program(make_step, layout, kv_cache_pages.shape[0], page_size)(*arguments)

    implementation.__doc__ = doc
    return implementation


def _global_columns(layout: sharded.Layout, page_size: int) -> sharded.PerShard:
    def step(first_row, rows, new_kv_tokens, slice_indices, kv_cache_pages, count):
        return _single_device(
            new_kv_tokens, slice_indices, kv_cache_pages, count, page_size=page_size
        )

    return step


def _first_shard_writes(layout: sharded.Layout, page_size: int) -> sharded.PerShard:
    correct = sharded.localized(_single_device, page_size)
    axes = [a for a in (layout.rows, layout.heads, layout.head_dim) if a is not None]

    def step(first_row, rows, new_kv_tokens, slice_indices, kv_cache_pages, count):
        first = jnp.all(jnp.array([lax.axis_index(axis) == 0 for axis in axes]))
        arguments = (first_row, rows, new_kv_tokens, slice_indices, kv_cache_pages, count)
        return lax.cond(first, lambda: correct(*arguments), lambda: kv_cache_pages)

    return step


global_rows_on_every_shard = _shard_by_shard(
    _global_columns,
    """Each shard runs the update on the global columns, never shifting them to its own rows:
    a shard past the first writes the first shard's rows into its own, and drops its own.""",
)

first_shard_only = _shard_by_shard(
    _first_shard_writes,
    """Localizes the columns right, but only the shard at index 0 on every mesh axis writes.""",
)


def gathers_the_cache(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Copies the whole cache to every device and updates it there: the values are right,
    but each device holds the whole cache and the result is no longer split."""
    sharding = getattr(kv_cache_pages, "sharding", None)
    if isinstance(sharding, NamedSharding):
        everywhere = NamedSharding(sharding.mesh, PartitionSpec())
        kv_cache_pages = jax.device_put(kv_cache_pages, everywhere)
    return _single_device(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


SHARDED: tuple[str, ...] = tuple(
    f"{__name__}:{name}"
    for name in ("global_rows_on_every_shard", "first_shard_only", "gathers_the_cache")
)
