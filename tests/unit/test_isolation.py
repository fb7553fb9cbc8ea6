"""A kernel that faults inside the TPU interpreter fails nothing but its own example, and JAX's
interpreter faulting is told apart from the implementation's code."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import replace

import interpreted_kernels
import pytest
from hypothesis import Phase, given, settings
from interpreted_kernels import KERNEL, column_kernel, exact, in_place, with_columns
from jax._src import dispatch
from jax._src.callback import (
    _OrderedIOEffect as ORDERED_IO,
)  # what the interpreter's callbacks order by
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from kvcache import kv_cache_update_jax
from properties._src.calling import callback_errors, implementations
from properties._src.calling.implementations import (
    Implementation,
    call,
    load,
    seen_interpreted,
)
from properties._src.calling.interpreter_repairs import InterpreterWarning
from properties._src.cases.catalog import CASES, PropertyCase
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import (
    AFFORDABLE_WHEN_INTERPRETED,
    BUCKETS,
    INTERPRETER_MAX_COLUMNS,
    Bucket,
)
from properties._src.domain.constraints import Constraint
from properties._src.drawing.shapes import within_budget
from properties._src.judging.attribution import attribute
from properties._src.running import runner
from properties._src.running.runner import run

# The small shapes an interpreted kernel can afford (the big ones cost it minutes a case), with
# four examples each (a shape's first is its simplest); a verdict needs no shrinking.
SMALL_AFFORDABLE = tuple(b for b in AFFORDABLE_WHEN_INTERPRETED if b.cache_rows <= 4096)[:6]
QUICK = settings(
    max_examples=4 * len(SMALL_AFFORDABLE),
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.generate,),
)


@pytest.fixture
def unmended(monkeypatch):
    """JAX's interpreter as JAX ships it: the race detector's assert on a zero-byte first wait
    (which the harness mends) stands for any interpreter fault the harness does not mend."""
    monkeypatch.setattr(implementations, "mended", contextlib.nullcontext)


FAULTING = with_columns([(0, 0, 0), (4, 1, 2)], 2)  # a zero-length first column
GOOD = with_columns([(4, 1, 2), (9, 0, 3)], 2)


def test_the_fault_is_jaxs_own_assert_and_race_detection_off_gives_the_oracles_bits(unmended):
    with pytest.raises(Exception) as raised:  # noqa: PT011 - what matters is attribute()'s reading
        call(KERNEL, FAULTING)
    fault = attribute(raised.value)
    assert fault.interpreter_fault, fault
    assert fault.type == "AssertionError"
    assert fault.frame.file.endswith("pallas/mosaic/interpret/shared_memory.py"), fault
    assert fault.frame.function == "wait"
    assert exact(FAULTING, call(KERNEL, FAULTING, detect_races=False))


def _leaves_a_semaphore_signalled(indices_ref, count_ref, new_hbm, _aliased, cache_hbm, semaphore):
    pl.semaphore_signal(semaphore, 1)


def leaves_a_semaphore_signalled(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Writes nothing (right when no column is real) and exits with a semaphore at 1."""
    scratch = [pltpu.SemaphoreType.REGULAR]
    arrays = (new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices)
    return in_place(_leaves_a_semaphore_signalled, (1,), scratch, *arrays)


def test_what_the_interpreter_prints_becomes_a_warning_naming_the_implementation(capsys):
    update = with_columns([], 0)
    implementation = Implementation("leaves_a_semaphore_signalled", leaves_a_semaphore_signalled)
    with pytest.warns(InterpreterWarning, match=r"^leaves_a_semaphore_signalled: .*non-zero count"):
        assert exact(update, call(implementation, update))
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
    """The interpreter reports a write out of bounds as a ValueError (a read as an IndexError)
    and records no line of the kernel for it: the report says it is the kernel's DMA."""
    writes_past_the_cache = with_columns([(4, 1, 2), (14, 0, 4)], 2)  # rows 14-17 of 16
    with pytest.raises(Exception) as raised:  # noqa: PT011 - what matters is attribute()'s reading
        call(KERNEL, writes_past_the_cache)
    fault = attribute(raised.value)
    assert (fault.type, fault.interpreter_fault) == ("ValueError", False), fault
    assert "Out-of-bounds write" in fault.message
    assert ": a DMA of the kernel, reported by the TPU interpreter at " in str(fault)


def test_an_out_of_bounds_read_names_the_kernels_line_and_prints_nothing(capfd):
    """A read out of bounds is raised in a host callback, which JAX logs with a traceback; the
    harness names the kernel's line that issued the copy, from that log, and prints nothing,
    even where JAX's callback logger was quieted (as a user may do)."""
    logger = logging.getLogger(callback_errors.CALLBACK_LOGGER)
    level, _ = logger.level, logger.setLevel(logging.CRITICAL)
    reads_past_the_tokens = with_columns([(4, 1, 2), (9, 6, 3)], 2)  # tokens 6-8 of 8
    with pytest.raises(Exception) as raised:  # noqa: PT011 - what matters is attribute()'s reading
        call(KERNEL, reads_past_the_tokens)
    fault = attribute(raised.value)
    assert (fault.type, fault.interpreter_fault) == ("IndexError", False), fault
    assert fault.own is not None and fault.own.file == interpreted_kernels.__file__, fault
    assert fault.own.function == "_", fault  # the body of _one_column_per_step's pl.when
    assert "Traceback" not in capfd.readouterr().err
    assert logger.level == logging.CRITICAL
    logger.setLevel(level)


def test_calls_after_a_fault_start_clean(unmended):
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017, PT011 - the interpreter's fault
            call(KERNEL, FAULTING)
        assert exact(GOOD, call(KERNEL, GOOD))
        assert exact(GOOD, call(load("kvcache:kv_cache_update"), GOOD))


class _PoisonedToken:
    """Stands for a runtime token that an earlier program's failure left in an error state."""

    def block_until_ready(self):
        raise RuntimeError("a stale error from an earlier example")


def test_a_poisoned_runtime_token_does_not_reach_the_next_call():
    call(KERNEL, GOOD)  # the interpreter's callbacks are ordered effects: tokens exist now
    assert dispatch.runtime_tokens.current_tokens == {}  # settled after the call
    dispatch.runtime_tokens.current_tokens[ORDERED_IO] = _PoisonedToken()
    assert exact(GOOD, call(KERNEL, GOOD))


def test_a_kernel_that_faults_on_some_examples_fails_nothing_else(unmended, monkeypatch):
    """Every property case in turn; some examples fault (a zero-length first column), the rest
    must pass. A case whose only finding is the fault is searched once: its example is shown
    as drawn, not searched for again to shrink."""
    searches: Counter[str] = Counter()
    settle = runner._Search.settle

    def counted(searching, *args, **kwargs):  # a pass of the searches for some cases
        searches.update(searching.unit.cases[i].id for i in searching.targets)
        return settle(searching, *args, **kwargs)

    monkeypatch.setattr(runner._Search, "settle", counted)
    outcomes = [
        run(KERNEL, case, RunConfig(settings=QUICK, buckets=SMALL_AFFORDABLE))
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
def test_an_implementation_seen_interpreted_draws_many_column_shapes_cut_to_its_budget(interpreted):
    """Whichever Pallas kernel it is, once a call ran it in the interpreter, a check draws the
    shapes of hundreds of columns with ``INTERPRETER_MAX_COLUMNS`` of them, the rest of each
    shape as it is (its dtype still reached); anything else is checked on every shape whole."""

    def update(*arguments, page_size):  # new each time: nothing seen of it yet
        chosen = column_kernel if interpreted else kv_cache_update_jax
        return chosen(*arguments, page_size=page_size)

    implementation = Implementation(f"interpreted={interpreted}", update)
    case = next(c for c in CASES if c.id == "matches-oracle-general")
    seen: set[Bucket] = set()
    outcome = run(
        implementation,
        case,
        RunConfig(
            settings=settings(QUICK, max_examples=len(BUCKETS)),
            buckets=BUCKETS,
            before_call=lambda u: seen.add(Bucket.of(u)),
        ),
    )
    assert outcome.status == "passed", outcome.failure
    assert seen_interpreted(implementation) is interpreted
    many = [b for b in BUCKETS if b.num_slices > INTERPRETER_MAX_COLUMNS]
    cut = {replace(b, num_slices=INTERPRETER_MAX_COLUMNS) for b in many}
    assert (cut if interpreted else set(many)) <= seen
    assert all(b.num_slices <= INTERPRETER_MAX_COLUMNS for b in seen) is interpreted


@pytest.mark.parametrize(("divisor", "columns"), [(24, 48), (64, 64), (128, None)])
def test_an_interpreted_kernels_cut_keeps_a_columns_constraint(divisor, columns):
    """Under ``columns%K`` the cut is ``INTERPRETER_MAX_COLUMNS`` rounded down to a multiple of
    K, so every shape drawn still meets the constraint; where no multiple fits under the cut
    (K over it) the shape is drawn whole (``columns``: None)."""
    call(KERNEL, REGRESSIONS[0].update)  # seen running a kernel in the interpreter
    many = tuple(b for b in BUCKETS if b.num_slices > INTERPRETER_MAX_COLUMNS)
    drawn: list[tuple[Bucket, Bucket]] = []

    @settings(QUICK, max_examples=2 * len(many))
    @given(within_budget(KERNEL, many, (Constraint("columns", divisor),)))
    def draw(bucket: Bucket) -> None:
        whole = next(b for b in many if replace(b, num_slices=bucket.num_slices) == bucket)
        drawn.append((whole, bucket))

    draw()
    assert drawn
    for whole, bucket in drawn:
        assert bucket == (whole if columns is None else replace(whole, num_slices=columns))
