"""Small Pallas TPU kernels that update the cache correctly, for the tests of how the harness
runs kernels in JAX's TPU interpreter (isolation, the interpreter's repairs), and the updates
they are called on."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.calling.implementations import Implementation
from properties._src.cases.catalog import bits
from properties._src.cases.regressions import REGRESSIONS


def _one_column_per_step(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, scratch, semaphore):
    """Copies column ``program_id`` through VMEM, if it is real. A zero-length first column
    makes the first wait on the semaphore a zero-byte one."""
    column = pl.program_id(0)

    @pl.when(column < count_ref[0])
    def _():
        dst, src, length = (indices_ref[row, column] for row in range(3))
        gather = pltpu.make_async_copy(
            new_hbm.at[pl.ds(src, length)], scratch.at[pl.ds(0, length)], semaphore
        )
        gather.start()
        gather.wait()
        scatter = pltpu.make_async_copy(
            scratch.at[pl.ds(0, length)], cache_hbm.at[pl.ds(dst, length)], semaphore
        )
        scatter.start()
        scatter.wait()


def _all_columns_at_once(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, scratch, semaphore):
    """Gathers every real column into its own page of VMEM, all started before any is
    waited for, then scatters them the same way. The interpreter runs a started DMA when a
    wait on its semaphore needs bytes, latest first: the first column's wait runs the second
    column's copy."""
    page_size = scratch.shape[0] // indices_ref.shape[1]

    def copy(column, stage):
        dst, src, length = (indices_ref[row, column] for row in range(3))
        staged = scratch.at[pl.ds(column * page_size, length)]
        if stage == "gather":
            return pltpu.make_async_copy(new_hbm.at[pl.ds(src, length)], staged, semaphore)
        return pltpu.make_async_copy(staged, cache_hbm.at[pl.ds(dst, length)], semaphore)

    for stage in ("gather", "scatter"):
        for step in ("start", "wait"):
            for column in range(indices_ref.shape[1]):
                pl.when(column < count_ref[0])(
                    lambda c=column, s=stage, t=step: getattr(copy(c, s), t)()
                )


def in_place(
    body, grid, scratch_shapes, new_kv_tokens, slice_indices, kv_cache_pages, count, *, widen=True
):
    """``body`` as a Pallas kernel over ``grid``: the slice indices and the count prefetched
    as int32 (unless not ``widen``: a table of a narrower dtype, prefetched as it is, has the
    DMAs' bounds computed in that dtype), the tokens and the cache in HBM, the cache updated in
    place."""
    return pl.pallas_call(
        body,
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2,
            in_specs=[pl.BlockSpec(memory_space=pl.ANY)] * 2,
            out_specs=pl.BlockSpec(memory_space=pl.ANY),
            grid=grid,
            scratch_shapes=scratch_shapes,
        ),
        out_shape=jax.ShapeDtypeStruct(kv_cache_pages.shape, kv_cache_pages.dtype),
        input_output_aliases={3: 0},
    )(
        slice_indices.astype(jnp.int32) if widen else slice_indices,
        jnp.reshape(count, (1,)).astype(jnp.int32),
        new_kv_tokens,
        kv_cache_pages,
    )


@functools.partial(jax.jit, static_argnames=("page_size", "widen"))
def column_kernel(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size, widen=True
):
    """A correct update, one column per grid step; JAX's race detector asserts on a
    zero-length first column (JAX's own assert, not this kernel's). Not ``widen``: its DMAs'
    starts and sizes are in the table's own dtype."""
    scratch = [
        pltpu.VMEM((page_size, *kv_cache_pages.shape[1:]), kv_cache_pages.dtype),
        pltpu.SemaphoreType.DMA,
    ]
    grid = (slice_indices.shape[1],)
    arrays = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
    return in_place(_one_column_per_step, grid, scratch, *arrays, widen=widen)


@functools.partial(jax.jit, static_argnames=("page_size",))
def batch_kernel(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """A correct update, every column in one grid step (as the peers' kernels batch them);
    JAX's interpreter calls a zero-length column read from the end of the tokens, or written
    at the end of the cache, out of bounds."""
    columns = slice_indices.shape[1]
    scratch = [
        pltpu.VMEM((columns * page_size, *kv_cache_pages.shape[1:]), kv_cache_pages.dtype),
        pltpu.SemaphoreType.DMA,
    ]
    arrays = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
    return in_place(_all_columns_at_once, (1,), scratch, *arrays)


KERNEL = Implementation("column_kernel", column_kernel)
TABLE_AS_GIVEN = Implementation(
    "column_kernel (table as given)", functools.partial(column_kernel, widen=False)
)
BATCH_KERNEL = Implementation("batch_kernel", batch_kernel)


def with_columns(columns, num_real) -> Update:
    """The first regression's arrays (8 tokens, a 16-row cache, pages of 4) with these
    ``(dst, src, length)`` columns, ``num_real`` of them real."""
    base = REGRESSIONS[0].update
    slice_indices = np.zeros_like(base.slice_indices)
    slice_indices[:, : len(columns)] = np.array(columns, dtype=np.int32).T
    return Update(
        base.new_kv_tokens,
        slice_indices,
        base.kv_cache_pages,
        np.array([num_real], dtype=np.int32),
        base.page_size,
    )


def exact(update: Update, actual: np.ndarray) -> bool:
    """Whether ``actual`` holds the oracle's bits for ``update``."""
    expected = reference_update(*update.arrays(), page_size=update.page_size)
    return np.array_equal(bits(expected), bits(actual))
