"""The original module's two implementations, rewritten to run on today's JAX.

They keep the defects the harness must find: the fallback's page-sized window is clamped
at the cache's end, and the kernel copies padding columns that share the last grid step
with real ones. The kernel also starts and waits on a DMA for a zero-length column; that is
not a defect: with race detection on, JAX's TPU interpreter (0.10.2 and 0.12) trips its own
``assert`` in ``Semaphore.wait`` when the first wait on a semaphore is for zero bytes, and with
it off the result is the oracle's. Used only as targets that the properties are expected to
reject.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu


@functools.partial(jax.jit, static_argnames=("page_size",))
def seed_fallback(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """A scan of page-sized ``dynamic_slice``/``dynamic_update_slice`` windows, one per column."""
    num_real = jnp.reshape(total_update_slices, ())
    padded = jnp.pad(new_kv_tokens, [(0, page_size), (0, 0), (0, 0)])
    window = (page_size, *kv_cache_pages.shape[1:])

    def write(cache, column):
        dst, src, length = (
            slice_indices[0, column],
            slice_indices[1, column],
            slice_indices[2, column],
        )
        new = lax.dynamic_slice(padded, (src, 0, 0), window)
        old = lax.dynamic_slice(cache, (dst, 0, 0), window)
        rows = jnp.where(jnp.arange(page_size)[:, None, None] < length, new, old)
        updated = lax.dynamic_update_slice(cache, rows, (dst, 0, 0))
        return jnp.where(column < num_real, updated, cache), None

    return lax.scan(write, kv_cache_pages, jnp.arange(slice_indices.shape[1]))[0]


def _seed_kernel(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, scratch, semaphore):
    slices_per_step = scratch.shape[0]
    first = pl.program_id(0) * slices_per_step

    @pl.when(first < count_ref[0])  # the seed launches cdiv(n, step) steps, no per-column mask
    def _():
        for phase in ("gather", "scatter"):
            copies = []
            for slot in range(slices_per_step):
                dst, src, length = (indices_ref[row, first + slot] for row in range(3))
                staged = scratch.at[slot, pl.ds(0, length)]
                source, target = (
                    (new_hbm.at[pl.ds(src, length)], staged)
                    if phase == "gather"
                    else (staged, cache_hbm.at[pl.ds(dst, length)])
                )
                copy = pltpu.make_async_copy(source, target, semaphore)
                copy.start()
                copies.append(copy)
            for copy in copies:
                copy.wait()


@functools.partial(jax.jit, static_argnames=("page_size",))
def seed_kernel(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """The seed's two-phase DMA kernel, with the largest step size up to 8 dividing the columns."""
    columns = slice_indices.shape[1]
    step = max(s for s in range(1, 9) if columns % s == 0)
    return pl.pallas_call(
        _seed_kernel,
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2,
            in_specs=[pl.BlockSpec(memory_space=pl.ANY), pl.BlockSpec(memory_space=pl.ANY)],
            out_specs=pl.BlockSpec(memory_space=pl.ANY),
            grid=(columns // step,),
            scratch_shapes=[
                pltpu.VMEM((step, page_size, *kv_cache_pages.shape[1:]), kv_cache_pages.dtype),
                pltpu.SemaphoreType.DMA,
            ],
        ),
        out_shape=jax.ShapeDtypeStruct(kv_cache_pages.shape, kv_cache_pages.dtype),
        input_output_aliases={3: 0},
    )(slice_indices, jnp.reshape(total_update_slices, (1,)), new_kv_tokens, kv_cache_pages)


LINEAGE: tuple[str, ...] = (f"{__name__}:seed_fallback", f"{__name__}:seed_kernel")
