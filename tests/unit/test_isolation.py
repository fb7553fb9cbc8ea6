"""A kernel that faults inside the TPU interpreter fails nothing but its own example, JAX's
interpreter faulting is told apart from the implementation's code, and the interpreter's crash
on zero-extent operands is mended."""

from __future__ import annotations

import functools
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, settings
from jax._src import dispatch
from jax._src.callback import (
    _OrderedIOEffect as ORDERED_IO,
)  # what the interpreter's callbacks order by
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from kvcache import kv_cache_update_jax
from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.calling.implementations import (
    CALL_MODES,
    INTERPRET_PARAMS,
    Implementation,
    call,
    load,
    seen_interpreted,
)
from properties._src.calling.interpreter_repairs import InterpreterWarning
from properties._src.cases.catalog import CASES, PropertyCase, bits
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import (
    AFFORDABLE_WHEN_INTERPRETED,
    BUCKETS,
    INTERPRETER_MAX_COLUMNS,
)
from properties._src.judging.attribution import INTERPRETER_SOURCE, Frame, Raise, attribute
from properties._src.running.runner import run

# Two examples of each shape an interpreted kernel can afford; a verdict needs no shrinking.
QUICK = settings(
    max_examples=2 * len(AFFORDABLE_WHEN_INTERPRETED),
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.generate,),
)


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


def _in_place(body, grid, scratch_shapes, new_kv_tokens, slice_indices, kv_cache_pages, count):
    """``body`` as a Pallas kernel over ``grid``: the slice indices and the count prefetched,
    the tokens and the cache in HBM, the cache updated in place."""
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
    )(slice_indices, jnp.reshape(count, (1,)), new_kv_tokens, kv_cache_pages)


@functools.partial(jax.jit, static_argnames=("page_size",))
def column_kernel(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """A correct update, one column per grid step; the race detector faults on a zero-length
    first column (JAX's own assert, not this kernel's)."""
    scratch = [
        pltpu.VMEM((page_size, *kv_cache_pages.shape[1:]), kv_cache_pages.dtype),
        pltpu.SemaphoreType.DMA,
    ]
    grid = (slice_indices.shape[1],)
    arrays = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
    return _in_place(_one_column_per_step, grid, scratch, *arrays)


KERNEL = Implementation("column_kernel", column_kernel)


def _with_columns(columns, num_real) -> Update:
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


FAULTING = _with_columns([(0, 0, 0), (4, 1, 2)], 2)  # a zero-length first column
GOOD = _with_columns([(4, 1, 2), (9, 0, 3)], 2)


def _no_new_tokens(heads: int) -> Update:
    """An update of ``heads`` heads with no new tokens and no real column."""
    return Update(
        np.zeros((0, heads, 128), np.float32),
        np.zeros((3, 2), np.int32),
        np.arange(16 * heads * 128, dtype=np.float32).reshape(16, heads, 128),
        np.array([0], dtype=np.int32),
        8,
    )


def _exact(update: Update, actual: np.ndarray) -> bool:
    expected = reference_update(*update.arrays(), page_size=update.page_size)
    return np.array_equal(bits(expected), bits(actual))


def test_the_fault_is_jaxs_own_assert_and_race_detection_off_gives_the_oracles_bits():
    with pytest.raises(Exception) as raised:  # noqa: PT011 - what matters is attribute()'s reading
        call(KERNEL, FAULTING)
    fault = attribute(raised.value)
    assert fault.interpreter_fault, fault
    assert fault.type == "AssertionError"
    assert fault.frame.file.endswith("pallas/mosaic/interpret/shared_memory.py"), fault
    assert fault.frame.function == "wait"
    assert _exact(FAULTING, call(KERNEL, FAULTING, detect_races=False))


@pytest.mark.parametrize("mode", CALL_MODES)
def test_a_kernel_runs_on_an_update_with_no_new_tokens(mode):
    update = _no_new_tokens(heads=2)
    assert _exact(update, call(KERNEL, update, mode))


@pytest.mark.xfail(raises=ZeroDivisionError, strict=True, reason="JAX's interpreter unmended")
def test_jax_still_divides_by_a_zero_extent_block():
    """When JAX's interpreter runs this itself, ``interpreter_repairs`` can go. (Its own shape:
    no program traced with the repair can be reused.)"""
    update = _no_new_tokens(heads=3)
    with pltpu.force_tpu_interpret_mode(INTERPRET_PARAMS):
        column_kernel(*(jnp.asarray(array) for array in update.arrays()), page_size=8)


def _leaves_a_semaphore_signalled(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, semaphore):
    pl.semaphore_signal(semaphore, 1)


def leaves_a_semaphore_signalled(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Writes nothing (right when no column is real) and exits with a semaphore at 1."""
    scratch = [pltpu.SemaphoreType.REGULAR]
    arrays = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
    return _in_place(_leaves_a_semaphore_signalled, (1,), scratch, *arrays)


def test_what_the_interpreter_prints_becomes_a_warning_naming_the_implementation(capsys):
    update = _with_columns([], 0)
    implementation = Implementation("leaves_a_semaphore_signalled", leaves_a_semaphore_signalled)
    with pytest.warns(InterpreterWarning, match=r"^leaves_a_semaphore_signalled: .*non-zero count"):
        assert _exact(update, call(implementation, update))
    assert capsys.readouterr().out == ""


def test_a_raise_in_the_implementations_own_code_is_not_an_interpreter_fault():
    def refuses(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        assert page_size > 4, "page_size too small"  # the implementation's own assert

    with pytest.raises(AssertionError) as raised:
        call(Implementation("refuses", refuses), GOOD)
    fault = attribute(raised.value)
    assert not fault.interpreter_fault
    assert fault.frame.file == __file__ and fault.frame.function == "refuses"


def test_an_out_of_bounds_write_is_the_kernels_fault():
    """The interpreter reports a write out of bounds as a ValueError (a read as an IndexError)."""
    writes_past_the_cache = _with_columns([(4, 1, 2), (14, 0, 4)], 2)  # rows 14-17 of 16
    with pytest.raises(Exception) as raised:  # noqa: PT011 - what matters is attribute()'s reading
        call(KERNEL, writes_past_the_cache)
    fault = attribute(raised.value)
    assert (fault.type, fault.interpreter_fault) == ("ValueError", False), fault
    assert "Out-of-bounds write" in fault.message


@pytest.mark.parametrize(
    ("rows", "nothing_inside"),
    [
        ((70, 70), True),  # zero rows at the end of the buffer
        ((0, 0), True),
        ((69, 71), False),  # past the end
        ((71, 71), False),  # zero rows, but starting past the end
        ((-5, -5), False),  # zero rows, but starting before the buffer
        ((-1391328201, -1391597151), False),  # a negative length (sglang-jax's padding)
    ],
)
def test_an_out_of_bounds_report_about_no_rows_inside_is_the_interpreters_fault(
    rows, nothing_inside
):
    """JAX's interpreter has called a zero-row DMA read at the end of a buffer out of bounds;
    a negative length or a start outside the buffer is the kernel's fault."""
    start, stop = rows
    message = (
        f"Out-of-bounds read of (0 0 hbm 100): reading [(slice({start}, {stop}, 1), "
        "slice(0, 3, 1))] but buffer has shape (70, 3)."
    )
    where = Frame(str(INTERPRETER_SOURCE / "interpret_pallas_call.py"), 663, "get")
    assert Raise("IndexError", message, where).interpreter_fault is nothing_inside


def test_calls_after_a_fault_start_clean():
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017, PT011 - the interpreter's fault
            call(KERNEL, FAULTING)
        assert _exact(GOOD, call(KERNEL, GOOD))
        assert _exact(GOOD, call(load("kvcache:kv_cache_update"), GOOD))


class _PoisonedToken:
    """Stands for a runtime token that an earlier program's failure left in an error state."""

    def block_until_ready(self):
        raise RuntimeError("a stale error from an earlier example")


def test_a_poisoned_runtime_token_does_not_reach_the_next_call():
    call(KERNEL, GOOD)  # the interpreter's callbacks are ordered effects: tokens exist now
    assert dispatch.runtime_tokens.current_tokens == {}  # settled after the call
    dispatch.runtime_tokens.current_tokens[ORDERED_IO] = _PoisonedToken()
    assert _exact(GOOD, call(KERNEL, GOOD))


def test_a_kernel_that_faults_on_some_examples_fails_nothing_else(monkeypatch):
    """Every property case in turn; some examples fault (a zero-length first column), the rest
    must pass. A case whose only finding is the fault is searched once: its example is shown
    as drawn, not searched for again to shrink."""
    searches: Counter[str] = Counter()
    build = PropertyCase.build

    def counted(case, *args, **kwargs):
        searches[case.id] += 1
        return build(case, *args, **kwargs)

    monkeypatch.setattr(PropertyCase, "build", counted)
    outcomes = [
        run(KERNEL, case, RunConfig(settings=QUICK, buckets=AFFORDABLE_WHEN_INTERPRETED))
        for case in CASES
        if isinstance(case, PropertyCase)
    ]
    for o in outcomes:
        assert o.status in {"passed", "error"}, (o.case.id, o.failure)
        assert searches[o.case.id] == 1, o.case.id
        if o.status == "error":  # the race detector's assert
            assert o.diagnosis.codes == ("interpreter-fault",), o.failure
            assert o.failure is not None and "/pallas/mosaic/interpret/" in str(o.failure), o
    assert any(o.status == "error" for o in outcomes), "no example faulted"


@pytest.mark.parametrize("interpreted", [True, False])
def test_an_implementation_seen_interpreted_skips_the_shapes_it_cannot_afford(interpreted):
    """Whichever Pallas kernel it is, once a call ran it in the interpreter, a check skips the
    300-column shape; anything else is checked on every shape."""

    def update(*arguments, page_size):  # new each time: nothing seen of it yet
        chosen = column_kernel if interpreted else kv_cache_update_jax
        return chosen(*arguments, page_size=page_size)

    implementation = Implementation(f"interpreted={interpreted}", update)
    case = next(c for c in CASES if c.id == "matches-oracle-general")
    columns: list[int] = []
    outcome = run(
        implementation,
        case,
        RunConfig(
            settings=settings(QUICK, max_examples=len(BUCKETS)),
            buckets=BUCKETS,
            before_call=lambda u: columns.append(u.slice_indices.shape[1]),
        ),
    )
    assert outcome.status in {"passed", "error"}, outcome.failure
    assert seen_interpreted(implementation) is interpreted
    assert (max(columns) > INTERPRETER_MAX_COLUMNS) is not interpreted, sorted(set(columns))
