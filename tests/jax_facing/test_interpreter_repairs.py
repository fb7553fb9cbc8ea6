"""JAX's TPU interpreter mended where it fails correct kernels (``interpreter_repairs``), and
nothing else relaxed: each mend has a strict ``xfail`` test running JAX's own code, which fails
the day JAX fixes it (then the mend can go), and a test that the kernel's real fault beside
the mended check is still found (a race after the mended wait: ``test_races``)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from interpreted_kernels import (
    BATCH_KERNEL,
    KERNEL,
    TABLE_AS_GIVEN,
    column_kernel,
    exact,
    with_columns,
)
from jax.experimental.pallas import tpu as pltpu

from oracle.contract import Update
from properties._src.calling.implementations import (
    CALL_MODES,
    INTERPRET_PARAMS,
    Implementation,
    call,
)
from properties._src.calling.isolation import clean_slate
from properties._src.judging.attribution import attribute

TOKENS = 8  # in every ``with_columns`` update; the cache has 16 rows
FIRST_WAIT_ZERO_BYTES = with_columns([(0, 0, 0), (4, 1, 2)], 2)
READS_NO_ROWS_AT_THE_END = with_columns([(4, 1, 2), (9, TOKENS, 0)], 2)
WRITES_NO_ROWS_AT_THE_END = with_columns([(4, 1, 2), (16, 3, 0)], 2)


class StillUnmended(Exception):
    """JAX's own interpreter raised the fault a mend corrects."""


def _run_unmended(kernel, update: Update, where: str, says: str) -> None:
    """Run ``kernel`` on ``update`` in JAX's interpreter as JAX ships it, with the harness's
    settings; ``StillUnmended`` if it raises from ``where`` saying ``says``."""
    arrays = [jnp.asarray(array) for array in update.arrays()]
    with clean_slate():
        try:
            with pltpu.force_tpu_interpret_mode(INTERPRET_PARAMS):
                jax.block_until_ready(kernel(*arrays, page_size=update.page_size))
        except Exception as error:
            fault = attribute(error)
            if fault.frame and fault.frame.file.endswith(where) and says in str(fault):
                raise StillUnmended(str(fault)) from error
            raise


def _fault(implementation: Implementation, update: Update):
    """What the harness's call of ``implementation`` on ``update`` raised, as attributed."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 - what matters is attribute()'s reading
        call(implementation, update)
    return attribute(raised.value)


@pytest.mark.xfail(raises=ZeroDivisionError, strict=True, reason="JAX's interpreter unmended")
def test_jax_still_divides_by_a_zero_extent_block():
    """When JAX's interpreter runs this itself, the zero-extent mend can go. (Its own shape:
    no program traced with the repair can be reused.)"""
    update = Update(
        np.zeros((0, 3, 128), np.float32),
        np.zeros((3, 2), np.int32),
        np.zeros((16, 3, 128), np.float32),
        np.array([0], dtype=np.int32),
        8,
    )
    with pltpu.force_tpu_interpret_mode(INTERPRET_PARAMS):
        column_kernel(*(jnp.asarray(array) for array in update.arrays()), page_size=8)


@pytest.mark.parametrize("mode", CALL_MODES)
def test_a_kernel_runs_on_an_update_with_no_new_tokens(mode):
    update = Update(
        np.zeros((0, 2, 128), np.float32),
        np.zeros((3, 2), np.int32),
        np.arange(16 * 2 * 128, dtype=np.float32).reshape(16, 2, 128),
        np.array([0], dtype=np.int32),
        8,
    )
    assert exact(update, call(KERNEL, update, mode))


@pytest.mark.xfail(raises=StillUnmended, strict=True, reason="JAX's interpreter unmended")
def test_jax_still_asserts_on_a_first_wait_of_zero_bytes():
    """When this passes, JAX's race detector waits for zero bytes itself: the wait mend can go."""
    _run_unmended(column_kernel, FIRST_WAIT_ZERO_BYTES, "interpret/shared_memory.py", "Assertion")


@pytest.mark.parametrize("mode", CALL_MODES)
def test_a_first_wait_of_zero_bytes_runs_with_race_detection_on(mode):
    assert exact(FIRST_WAIT_ZERO_BYTES, call(KERNEL, FIRST_WAIT_ZERO_BYTES, mode))


@pytest.mark.xfail(raises=StillUnmended, strict=True, reason="JAX's interpreter unmended")
def test_jax_still_calls_a_read_of_no_rows_at_the_end_out_of_bounds():
    """When this passes, JAX's interpreter reads ``[T, T)`` itself: the clipping mend can go.
    (A write of no rows at the end it already takes: it drops what falls outside quietly.)"""
    update = READS_NO_ROWS_AT_THE_END
    _run_unmended(BATCH_KERNEL.function, update, "interpret_pallas_call.py", "Out-of-bounds read")


@pytest.mark.parametrize("mode", CALL_MODES)
@pytest.mark.parametrize(
    "update", [READS_NO_ROWS_AT_THE_END, WRITES_NO_ROWS_AT_THE_END], ids=["read", "write"]
)
def test_no_rows_at_the_end_of_a_buffer_are_read_and_written(update, mode):
    assert exact(update, call(BATCH_KERNEL, update, mode))


@pytest.mark.parametrize(
    ("column", "says"),
    [
        ((9, TOKENS, 1), "Out-of-bounds read"),  # one row past the end of the tokens
        ((9, TOKENS + 1, 0), "Out-of-bounds read"),  # no rows, but starting past the end
        ((9, 3, -1), "Out-of-bounds read"),  # a negative length
        ((16, 3, 1), "Out-of-bounds write"),  # one row past the end of the cache
    ],
)
def test_a_range_out_of_bounds_beside_the_mend_is_still_the_kernels_fault(column, says):
    fault = _fault(BATCH_KERNEL, with_columns([(4, 1, 2), column], 2))
    assert says in fault.message, fault
    assert not fault.interpreter_fault, fault


def narrow_table(dtype, heads: int, head_dim: int = 128) -> Update:
    """One column of 4 rows, each ``heads`` x ``head_dim`` float32, from a slice table in
    ``dtype``. With a head_dim of 128 the copy is 2048 * heads bytes, which the tables of
    ``NARROW_TABLES`` wrap to 0 or below: 2048 is 0 as an 8-bit value, 32768 is -32768 as an
    int16."""
    tokens = np.arange(8 * heads * head_dim, dtype=np.float32).reshape(8, heads, head_dim)
    return Update(
        tokens,
        np.array([[4], [2], [4]], dtype=dtype),
        -np.arange(16 * heads * head_dim, dtype=np.float32).reshape(16, heads, head_dim),
        np.array([1], dtype=np.int32),
        4,
    )


NARROW_TABLES = [(np.int8, 1), (np.uint8, 1), (np.int16, 16)]


@pytest.mark.xfail(raises=StillUnmended, strict=True, reason="JAX's interpreter unmended")
def test_jax_still_waits_for_a_byte_count_computed_in_the_tables_dtype():
    """When this passes, JAX's interpreter counts a DMA's bytes wide enough itself: the
    widening mend can go. (Its own shape, as above: 4 rows of 120 float32 are 1920 bytes,
    -128 as an int8, a wait that returns at once; race detection off, whose clocks assert on
    a first wait for no bytes.)"""
    update = narrow_table(np.int8, 1, head_dim=120)
    arrays = [jnp.asarray(array) for array in update.arrays()]
    without_races = dataclasses.replace(INTERPRET_PARAMS, detect_races=False)
    with clean_slate(), pltpu.force_tpu_interpret_mode(without_races):
        actual = np.asarray(TABLE_AS_GIVEN.function(*arrays, page_size=update.page_size))
    if not exact(update, actual):
        raise StillUnmended("the column's rows were not written")


@pytest.mark.parametrize("mode", CALL_MODES)
@pytest.mark.parametrize(("dtype", "heads"), NARROW_TABLES, ids=lambda v: getattr(v, "__name__", v))
def test_dmas_sized_from_a_narrow_table_copy_their_rows(dtype, heads, mode):
    update = narrow_table(dtype, heads)
    assert exact(update, call(TABLE_AS_GIVEN, update, mode))


def test_a_write_out_of_bounds_from_a_narrow_table_is_still_the_kernels_fault():
    update = dataclasses.replace(
        narrow_table(np.int8, 1), slice_indices=np.array([[14], [2], [4]], np.int8)
    )
    fault = _fault(TABLE_AS_GIVEN, update)
    assert "Out-of-bounds write" in fault.message, fault
    assert not fault.interpreter_fault, fault
