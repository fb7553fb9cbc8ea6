"""A race inside a Pallas kernel is a failure, even when the interpreter's result looks right,
and even after a zero-byte wait the harness mends (``interpreter_repairs``)."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from interpreted_kernels import in_place, with_columns
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from oracle.contract import Update
from properties._src.calling.implementations import Implementation, RaceDetected, call


def _copy_before_staging_lands(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, scratch, sem):
    """Starts copying the VMEM scratch out while the DMA filling it is still in flight."""
    stage = pltpu.make_async_copy(new_hbm.at[pl.ds(0, scratch.shape[0])], scratch, sem)
    publish = pltpu.make_async_copy(
        scratch, cache_hbm.at[pl.ds(indices_ref[0, 0], scratch.shape[0])], sem
    )
    stage.start()
    publish.start()  # should come after stage.wait()
    stage.wait()
    publish.wait()


def _after_a_zero_byte_wait(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, scratch, sem):
    """The same race, after a zero-byte DMA waited for first on the same semaphore (the wait
    JAX's race detector asserts on, and the harness mends)."""
    nothing = pltpu.make_async_copy(new_hbm.at[pl.ds(0, 0)], scratch.at[pl.ds(0, 0)], sem)
    nothing.start()
    nothing.wait()
    _copy_before_staging_lands(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, scratch, sem)


def _racy(body):
    """An update running ``body``: it copies the first ``page_size`` new tokens to the first
    column's cache start, racily."""

    @functools.partial(jax.jit, static_argnames=("page_size",))
    def update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        scratch = [
            pltpu.VMEM((page_size, *kv_cache_pages.shape[1:]), kv_cache_pages.dtype),
            pltpu.SemaphoreType.DMA,
        ]
        arrays = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
        return in_place(body, (1,), scratch, *arrays)

    return update


def test_a_race_in_the_kernel_fails_the_call():
    update = Update(
        new_kv_tokens=np.arange(1, 9, dtype=np.float32).reshape(8, 1, 1),
        slice_indices=np.array([[4], [0], [4]], dtype=np.int32),
        kv_cache_pages=np.zeros((16, 1, 1), dtype=np.float32),
        total_update_slices=np.array([1], dtype=np.int32),
        page_size=4,
    )
    with pytest.raises(RaceDetected, match="racy: the TPU interpreter detected a race"):
        call(Implementation("racy", _racy(_copy_before_staging_lands)), update)


def test_a_race_between_real_bytes_after_a_zero_byte_wait_is_still_found():
    update = with_columns([(4, 0, 4)], 1)
    racy = Implementation("racy", _racy(_after_a_zero_byte_wait))
    with pytest.raises(RaceDetected, match="racy: the TPU interpreter detected a race"):
        call(racy, update)
