"""The Pallas TPU kernel: two-phase DMA through a VMEM scratch buffer.

Each grid step owns ``slices_per_processing_page`` consecutive columns of ``slice_indices``.
Phase 1 copies every active column's new tokens from HBM into its own row block of the VMEM
scratch; phase 2 copies each block from VMEM into the cache in HBM. A column is active when it
is real (index < n) and non-empty; inactive columns start no DMA, so padding columns are never
read, even when they share the last grid step with real ones.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jaxtyping import Array, Int, Shaped

from kvcache._arguments import cdiv, check_arguments, nothing_to_write, slice_count
from kvcache.sharded import on_mesh

TPU_LANES = 128


def _kv_cache_update_kernel(
    slice_indices_ref,
    slice_count_ref,
    new_kv_tokens_hbm_ref,
    _aliased_cache_hbm_ref,
    kv_cache_pages_hbm_ref,
    vmem_scratch_buffer,
    dma_semaphore,
) -> None:
    slices_per_step = vmem_scratch_buffer.shape[0]
    first_column = pl.program_id(0) * slices_per_step
    num_real = slice_count_ref[0]

    def copy_all(make_copy) -> None:
        """Start one DMA per active column, then wait for each (same predicate, same order).
        Loops, not unrolled: the interpreter's program (and its compilation) stays the size
        of one column's copy whatever ``slices_per_step`` is."""

        def each_active(action):
            def body(slot, carry):
                column = first_column + slot
                length = slice_indices_ref[2, column]

                @pl.when(jnp.logical_and(column < num_real, length > 0))
                def _():
                    action(make_copy(slot, column, length))

                return carry

            jax.lax.fori_loop(0, slices_per_step, body, 0)

        each_active(lambda copy: copy.start())
        each_active(lambda copy: copy.wait())

    copy_all(
        lambda slot, column, length: pltpu.make_async_copy(
            new_kv_tokens_hbm_ref.at[pl.ds(slice_indices_ref[1, column], length)],
            vmem_scratch_buffer.at[slot, pl.ds(0, length)],
            dma_semaphore,
        )
    )
    copy_all(
        lambda slot, column, length: pltpu.make_async_copy(
            vmem_scratch_buffer.at[slot, pl.ds(0, length)],
            kv_cache_pages_hbm_ref.at[pl.ds(slice_indices_ref[0, column], length)],
            dma_semaphore,
        )
    )


@on_mesh
@functools.partial(
    jax.jit,
    static_argnames=("page_size", "slices_per_processing_page"),
    donate_argnames=("kv_cache_pages",),
)
def kv_cache_update(
    new_kv_tokens: Shaped[Array, "tokens heads head_dim"],
    slice_indices: Int[Array, "3 num_slices"],
    kv_cache_pages: Shaped[Array, "cache_rows heads head_dim"],
    total_update_slices: Int[Array, 1] | Int[Array, ""],
    *,
    page_size: int = 32,
    slices_per_processing_page: int = 8,
) -> Shaped[Array, "cache_rows heads head_dim"]:
    """Write new tokens into the paged cache with the Pallas TPU kernel; returns the cache.

    ``kv_cache_pages`` is donated and updated in place. Any column count works: the columns
    are padded to a multiple of ``slices_per_processing_page`` and the padding is never
    copied. On CPU, call under ``pltpu.force_tpu_interpret_mode`` to run the kernel in the
    TPU interpreter. On a TPU, head_dim must be a multiple of 128 (the lane width), and JAX
    0.10's Mosaic lowering refuses a bool cache (``kvcache.update`` takes pure JAX for one).
    """
    check_arguments(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size)
    if slices_per_processing_page < 1:
        raise ValueError(
            f"slices_per_processing_page must be >= 1, got {slices_per_processing_page}"
        )
    if nothing_to_write(new_kv_tokens, slice_indices):
        return kv_cache_pages
    _, heads, head_dim = kv_cache_pages.shape
    if jax.default_backend() == "tpu" and head_dim % TPU_LANES:
        raise ValueError(f"head_dim {head_dim} must be a multiple of {TPU_LANES} on a TPU")

    steps = cdiv(slice_indices.shape[1], slices_per_processing_page)
    padding = steps * slices_per_processing_page - slice_indices.shape[1]
    slice_indices = jnp.pad(slice_indices.astype(jnp.int32), ((0, 0), (0, padding)))
    count = jnp.reshape(slice_count(total_update_slices), (1,))
    scratch = pltpu.VMEM(
        (slices_per_processing_page, page_size, heads, head_dim), kv_cache_pages.dtype
    )
    return pl.pallas_call(
        _kv_cache_update_kernel,
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2,
            in_specs=[pl.BlockSpec(memory_space=pl.ANY), pl.BlockSpec(memory_space=pl.ANY)],
            out_specs=pl.BlockSpec(memory_space=pl.ANY),
            grid=(steps,),
            scratch_shapes=[scratch, pltpu.SemaphoreType.DMA],
        ),
        out_shape=jax.ShapeDtypeStruct(kv_cache_pages.shape, kv_cache_pages.dtype),
        input_output_aliases={3: 0},
    )(slice_indices, count, new_kv_tokens, kv_cache_pages)
