"""A race inside a Pallas kernel is a failure, even when the interpreter's result looks right."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from oracle.contract import Update
from properties._src.calling.implementations import Implementation, RaceDetected, call


def _copy_before_staging_lands(start_ref, new_hbm, _aliased, cache_hbm, scratch, semaphore):
    """Starts copying the VMEM scratch out while the DMA filling it is still in flight."""
    stage = pltpu.make_async_copy(new_hbm.at[pl.ds(0, scratch.shape[0])], scratch, semaphore)
    publish = pltpu.make_async_copy(
        scratch, cache_hbm.at[pl.ds(start_ref[0], scratch.shape[0])], semaphore
    )
    stage.start()
    publish.start()  # should come after stage.wait()
    stage.wait()
    publish.wait()


@functools.partial(jax.jit, static_argnames=("page_size",))
def racy_update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """Copies the first ``page_size`` new tokens to the first column's cache start, racily."""
    del total_update_slices
    return pl.pallas_call(
        _copy_before_staging_lands,
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=1,
            in_specs=[pl.BlockSpec(memory_space=pl.ANY)] * 2,
            out_specs=pl.BlockSpec(memory_space=pl.ANY),
            grid=(1,),
            scratch_shapes=[
                pltpu.VMEM((page_size, *kv_cache_pages.shape[1:]), kv_cache_pages.dtype),
                pltpu.SemaphoreType.DMA,
            ],
        ),
        out_shape=jax.ShapeDtypeStruct(kv_cache_pages.shape, kv_cache_pages.dtype),
        input_output_aliases={2: 0},
    )(slice_indices[0], new_kv_tokens, kv_cache_pages)


def test_a_race_in_the_kernel_fails_the_call():
    update = Update(
        new_kv_tokens=np.arange(1, 9, dtype=np.float32).reshape(8, 1, 1),
        slice_indices=np.array([[4], [0], [4]], dtype=np.int32),
        kv_cache_pages=np.zeros((16, 1, 1), dtype=np.float32),
        total_update_slices=np.array([1], dtype=np.int32),
        page_size=4,
    )
    with pytest.raises(RaceDetected, match="racy: the TPU interpreter detected a race"):
        call(Implementation("racy", racy_update), update)
