"""The update on a device mesh: every shard writes its own rows and heads, and nothing moves.

A sharded cache has its rows split, in whole pages, over one mesh axis and its heads over
another (a ``NamedSharding``); the new tokens have the cache's heads sharding; ``slice_indices``
and the count are replicated and global. Under ``shard_map`` each shard localizes the global
columns to its own rows: a column keeps the part of its slice that falls in the shard's rows,
moved to local row numbers, with its source moved by as much; a column that misses the shard
gets length 0. The shard then runs the single-device update on its local block. No value
crosses devices, so the compiled program holds no cache-sized collective or copy, and the
result keeps the cache's sharding.

``on_mesh`` wraps a single-device update so it takes this path whenever its cache is sharded;
``kvcache``'s kernel and fallback are wrapped so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from kvcache._arguments import slice_count

AxisNames = str | tuple[str, ...] | None  # one entry of a PartitionSpec


@dataclass(frozen=True)
class Layout:
    """How a cache ``[rows, heads, head_dim]`` is split over ``mesh``: the mesh axes of each
    dimension (``None``: not split)."""

    mesh: jax.sharding.Mesh | jax.sharding.AbstractMesh
    rows: AxisNames
    heads: AxisNames
    head_dim: AxisNames

    @property
    def cache_spec(self) -> PartitionSpec:
        return PartitionSpec(self.rows, self.heads, self.head_dim)

    @property
    def tokens_spec(self) -> PartitionSpec:
        """The new tokens: every shard needs every token of its heads."""
        return PartitionSpec(None, self.heads, self.head_dim)

    def shards(self, axes: AxisNames) -> int:
        names = (axes,) if isinstance(axes, str) else axes or ()
        return math.prod(self.mesh.shape[name] for name in names)


def layout_of(kv_cache_pages) -> Layout | None:
    """The cache's layout when it is split over a mesh of more than one device, else ``None``.

    A concrete array's ``NamedSharding`` is read whatever its mesh's axis types; inside a trace
    only explicit-axis meshes are visible (with auto axes, XLA's partitioner handles the
    traced update as a whole).
    """
    if isinstance(kv_cache_pages, jax.core.Tracer):
        sharding = getattr(jax.typeof(kv_cache_pages), "sharding", None)
    else:
        sharding = getattr(kv_cache_pages, "sharding", None)
    if not isinstance(sharding, NamedSharding) or sharding.mesh.size <= 1:
        return None
    spec = tuple(sharding.spec) + (None,) * (3 - len(sharding.spec))
    if all(axes is None for axes in spec):
        return None
    return Layout(sharding.mesh, *spec)


def localize(slice_indices, total_update_slices, *, page_size: int, first_row, rows: int):
    """The columns as the shard holding cache rows ``first_row .. first_row + rows - 1`` sees
    them: each slice cut to those rows and moved to local row numbers, its source moved by as
    much; a slice outside them, and every padding column, becomes ``(0, 0, 0)``.

    Lengths are clipped to ``[0, page_size]`` first, as the fallback clips them, and starts far
    outside the shard are pulled in to a point where the slice still misses it, which keeps
    the arithmetic inside int32 for any input.
    """
    dst, src, length = slice_indices.astype(jnp.int32)
    real = jnp.arange(dst.shape[0]) < slice_count(total_update_slices)
    length = jnp.where(real, jnp.clip(length, 0, page_size), 0)
    dst = jnp.clip(dst, first_row - page_size, first_row + rows)
    start = jnp.maximum(dst, first_row)
    local_length = jnp.maximum(jnp.minimum(dst + length, first_row + rows) - start, 0)
    kept = local_length > 0
    return jnp.stack(
        [
            jnp.where(kept, start - first_row, 0),
            jnp.where(kept, src + (start - dst), 0),
            local_length,
        ]
    )


def require_whole_pages(layout: Layout, cache_rows: int, page_size: int) -> int:
    """Rows per shard; ``ValueError`` unless the rows split over the mesh in whole pages."""
    shards = layout.shards(layout.rows)
    if cache_rows % (shards * page_size):
        raise ValueError(
            f"the cache's {cache_rows} rows must split over mesh axes {layout.rows!r} "
            f"({shards} shards) in whole pages of {page_size} rows"
        )
    return cache_rows // shards


PerShard = Callable[..., jax.Array]  # (first_row, rows, new, indices, cache, count) -> cache


def shard_mapped(layout: Layout, per_shard: PerShard, cache_rows: int, page_size: int) -> Callable:
    """``(new, indices, cache, count) -> cache`` running ``per_shard`` on each shard's blocks.

    ``per_shard`` gets the shard's first global row and its row count, then the new tokens of
    its heads, the global (replicated) indices and count, and its block of the cache.
    """
    rows = require_whole_pages(layout, cache_rows, page_size)

    def on_one_shard(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices):
        index = 0 if layout.rows is None else lax.axis_index(layout.rows)
        first_row = jnp.int32(index) * rows
        return per_shard(
            first_row, rows, new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices
        )

    replicated = PartitionSpec()
    return jax.shard_map(
        on_one_shard,
        mesh=layout.mesh,
        in_specs=(layout.tokens_spec, replicated, layout.cache_spec, replicated),
        out_specs=layout.cache_spec,
        # The kernel's pallas_call declares its result as a ShapeDtypeStruct without the
        # varying-axes type that check_vma=True requires (JAX raises ValueError).
        check_vma=False,
    )


def localized(local_update: Callable, page_size: int, **options) -> PerShard:
    """The correct per-shard step: localize the columns, then run ``local_update``."""

    def per_shard(first_row, rows, new_kv_tokens, slice_indices, kv_cache_pages, count):
        local = localize(slice_indices, count, page_size=page_size, first_row=first_row, rows=rows)
        return local_update(
            new_kv_tokens, local, kv_cache_pages, count, page_size=page_size, **options
        )

    return per_shard


@functools.cache
def _sharded_program(local_update: Callable, layout: Layout, shape: tuple, page_size: int, options):
    """The jitted shard-by-shard update for one layout and cache shape (compiled once each)."""
    per_shard = localized(local_update, page_size, **dict(options))
    return jax.jit(
        shard_mapped(layout, per_shard, shape[0], page_size), donate_argnames="kv_cache_pages"
    )


class on_mesh:  # noqa: N801  (a decorator, named like one)
    """A single-device update that runs shard by shard when its cache is split over a mesh.

    Otherwise it is the wrapped (jitted) update itself: attributes such as ``clear_cache``
    and ``_cache_size`` are the wrapped function's, and ``lower`` lowers whichever program a
    call with the same arguments runs.
    """

    def __init__(self, single_device: Callable):
        functools.update_wrapper(self, single_device)
        self.single_device = single_device

    def _sharded(self, kv_cache_pages, page_size: int, options: dict):
        layout = layout_of(kv_cache_pages)
        if layout is None:
            return None
        key = tuple(sorted(options.items()))
        return _sharded_program(self.single_device, layout, kv_cache_pages.shape, page_size, key)

    def __call__(
        self,
        new_kv_tokens,
        slice_indices,
        kv_cache_pages,
        total_update_slices,
        *,
        page_size=32,
        **options,
    ):
        arguments = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
        sharded = self._sharded(kv_cache_pages, page_size, options)
        if sharded is None:
            return self.single_device(*arguments, page_size=page_size, **options)
        return sharded(*arguments)

    def lower(
        self,
        new_kv_tokens,
        slice_indices,
        kv_cache_pages,
        total_update_slices,
        *,
        page_size=32,
        **options,
    ):
        arguments = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
        sharded = self._sharded(kv_cache_pages, page_size, options)
        if sharded is None:
            return self.single_device.lower(*arguments, page_size=page_size, **options)
        return sharded.lower(*arguments)

    def __getattr__(self, name: str):
        return getattr(self.single_device, name)
