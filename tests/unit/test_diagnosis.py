"""Each diagnosis, on a known-bad target that has that defect and no other."""

from __future__ import annotations

import dataclasses
import inspect
import re

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, settings

from kvcache import kv_cache_update_jax
from properties._src.calling.implementations import CALL_MODES, Implementation, call, load
from properties._src.cases.catalog import CASES, units
from properties._src.cases.property_case import examples_per_shape
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS, SHRINK_TARGET
from properties._src.judging.attribution import JAX_SOURCE
from properties._src.judging.checks import MOST_RANGES, bits
from properties._src.judging.diagnosis import MOST_RUNS, explain, owners
from properties._src.judging.judge import judged_call
from properties._src.judging.steps import Step
from properties._src.reporting.report import render
from properties._src.running.api import check
from properties._src.running.runner import run, run_together
from properties.known_bad.mutants import count_minus_one, quiet_nans

CLAMPED, PADDING = (r.update for r in REGRESSIONS)
MATCHES_ORACLE = CASES[0].prop
QUICK = settings(max_examples=20, derandomize=True, database=None, deadline=None)


def mutant(name: str) -> Implementation:
    return load(f"properties.known_bad.mutants:{name}")


def with_signalling_nan(update, row: int):
    cache = update.kv_cache_pages.copy()
    cache.view(np.uint32)[row, 0, 0] = 0x7F800001  # a signalling NaN with payload 1
    return dataclasses.replace(update, kv_cache_pages=cache)


def test_padding_copied_names_the_rows_the_tokens_and_the_padding_column():
    diagnosis = explain(PADDING, call(mutant("padding_in_last_block"), PADDING))
    assert diagnosis.codes == ("padding-copied",)
    assert "Rows 8-9 hold new tokens 1-2, the slice of padding column 1" in str(diagnosis)


def test_a_clamped_window_is_a_shift_and_an_untouched_row():
    diagnosis = explain(CLAMPED, call(load("properties.known_bad.lineage:seed_fallback"), CLAMPED))
    assert diagnosis.codes == ("values", "untouched-row")
    assert "Row 12 holds what row 13 should (shifted by 1 row), where no real column" in str(
        diagnosis
    )


def test_a_row_written_one_page_late_is_untouched_row_and_values():
    update = dataclasses.replace(PADDING, total_update_slices=np.array([1], np.int32))
    diagnosis = explain(update, call(mutant("page_aligned_one_page_late"), update))
    assert diagnosis.codes == ("values", "untouched-row")
    assert "Row 0 holds its old value, where column 0 writes it." in str(diagnosis)


def test_nan_payloads_alone_are_nan_payload_and_equal_by_value():
    update = with_signalling_nan(PADDING, 5)
    failure = judged_call(mutant("nan_quieted_everywhere"), MATCHES_ORACLE, Step(update))[1]
    assert failure is not None and failure.diagnosis.codes == ("nan-payload",)
    assert (
        judged_call(mutant("nan_quieted_everywhere"), MATCHES_ORACLE, Step(update), "values")[1]
        is None
    )


def test_signed_zeros_alone_are_signed_zero():
    update = dataclasses.replace(PADDING, kv_cache_pages=PADDING.kv_cache_pages.copy())
    update.kv_cache_pages[3] = 0.0
    actual = call(load("kvcache:kv_cache_update_jax"), update).copy()
    actual[3] = -0.0
    assert explain(update, actual).codes == ("signed-zero",)


def test_a_nan_difference_never_hides_a_wrong_value():
    def both(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        return count_minus_one(
            new_kv_tokens,
            slice_indices,
            quiet_nans(kv_cache_pages),
            total_update_slices,
            page_size=page_size,
        )

    update = with_signalling_nan(CLAMPED, 2)
    failure = judged_call(Implementation("both", both), MATCHES_ORACLE, Step(update))[1]
    assert failure.diagnosis.codes == ("nan-payload", "values")


def test_a_nan_only_mutant_fails_by_bits_with_nan_payload_only_and_passes_by_values():
    """On the pool's small float shapes: a NaN-payload finding alone is searched past (soft) and
    then shrunk, so every example of a big shape would be paid twice."""
    small_floats = tuple(
        b for b in BUCKETS if b.dtype in ("float32", "float16") and b.cache_rows <= 4096
    )[:3]
    config = RunConfig(settings=QUICK, explicit_examples=False, buckets=small_floats)
    by_bits = run(mutant("nan_quieted_everywhere"), CASES[0], config)
    assert by_bits.status == "failed" and by_bits.diagnosis.codes == ("nan-payload",)
    share = examples_per_shape(QUICK.max_examples, len(small_floats))
    assert by_bits.examples <= share * len(small_floats)
    by_values = run(
        mutant("nan_quieted_everywhere"), CASES[0], dataclasses.replace(config, compare="values")
    )
    assert by_values.status == "passed"


def _last_slice_end(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Indexes the last column's end, as a peer's ``slice_ends[-1]`` does: JAX raises on its
    behalf when there are no columns."""
    slice_ends = jnp.cumsum(slice_indices[2])
    return kv_cache_pages.at[slice_ends[-1]].set(kv_cache_pages[0])


@pytest.mark.parametrize("mode", CALL_MODES)
def test_raised_names_the_implementations_own_line_then_jaxs(mode):
    no_columns = dataclasses.replace(
        PADDING,
        slice_indices=np.zeros((3, 0), np.int32),
        total_update_slices=np.array([0], np.int32),
    )
    implementation = Implementation("last_slice_end", _last_slice_end)
    _, failure = judged_call(implementation, MATCHES_ORACLE, Step(no_columns, mode))
    assert failure is not None
    assert failure.diagnosis.codes == ("raised",)
    source = inspect.getsource(_last_slice_end).splitlines()
    own = _last_slice_end.__code__.co_firstlineno + next(
        i for i, line in enumerate(source) if line.lstrip().startswith("return")
    )
    raised_in_jax = rf" \(raised in {re.escape(str(JAX_SOURCE))}/_src/numpy/\S+:\d+ in \w+\)"
    assert re.search(
        rf"at {re.escape(__file__)}:{own} in _last_slice_end{raised_in_jax}", str(failure.diagnosis)
    ), failure.diagnosis


def test_raised_and_shape_or_dtype():
    def raises(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        raise ValueError("refused")

    failure = judged_call(Implementation("raises", raises), MATCHES_ORACLE, Step(PADDING))[1]
    assert failure.diagnosis.codes == ("raised",)
    assert f"ValueError: refused at {__file__}:" in str(failure.diagnosis)
    half = dataclasses.replace(
        PADDING,
        new_kv_tokens=PADDING.new_kv_tokens.astype(np.float16),
        kv_cache_pages=PADDING.kv_cache_pages.astype(np.float16),
    )
    promoted = judged_call(mutant("result_promoted"), MATCHES_ORACLE, Step(half))[1]
    assert promoted.diagnosis.codes == ("shape-or-dtype",)


def test_rows_that_differ_show_only_the_elements_that_differ():
    update = dataclasses.replace(
        PADDING,
        kv_cache_pages=np.zeros((16, 2, 8), np.float32),
        new_kv_tokens=np.ones((8, 2, 8), np.float32),
    )
    actual = call(load("kvcache:kv_cache_update_jax"), update).copy()
    actual[0, 1, 6] = 7.0
    failure = judged_call(
        Implementation("x", lambda *a, page_size: actual), MATCHES_ORACLE, Step(update)
    )[1]
    text = render("x", failure)
    assert "row 0 (page 0 offset 0): 1 of 16 elements differ" in text
    assert "    [1, 6]: 1. -> 7.\n" in text


def _drops_the_last_of_two_columns(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Drops the last real column of two or more, except on rows of one element (the explicit
    examples' shape): only a drawn example shows it, and not the first (simplest) one drawn."""
    count = total_update_slices
    if kv_cache_pages.shape[1:] != (1, 1):
        count = jnp.where(count >= 2, count - 1, count)
    return kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, count, page_size=page_size
    )


def test_a_failure_names_its_seed_and_the_seed_replays_it():
    """The first failing example as drawn (shrinking off: it would reach the same smallest
    example from any seed), on one case: the same seed shows it again, another seed another.
    Three searches over every pool shape: 20 to 35 s on a 2-core machine."""
    drawn = settings(
        max_examples=2 * len(BUCKETS),  # a drawn example on each shape after its simplest
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.explicit, Phase.generate),
    )
    implementation = Implementation("drops", _drops_the_last_of_two_columns)
    [a, b, other] = (
        check(implementation, profile=drawn, cases=CASES[:1], seed=seed).not_passed[0]
        for seed in (1234, 1234, 4321)
    )
    assert "seed 1234" in a.counterexample and "explicit example" not in a.counterexample
    assert a.counterexample == b.counterexample and a.examples == b.examples
    assert other.counterexample.split("reproduce:")[1] != a.counterexample.split("reproduce:")[1]


def test_soft_findings_from_other_examples_are_not_reported():
    """NaN payloads quieted in float32 caches, the last column dropped in float16 ones. The pool
    is searched shape by shape, so the float32 shape's examples (soft findings: the search goes
    on) come before the float16 one that fails; the nan-payload findings seen on them come with
    no example to check them on, so they are not reported: every finding reported is the shown
    example's own. Checked with its tier's other properties on the same calls
    (``run_together``), ``matches-oracle`` shows the same example with the same findings as
    alone, and every other property's findings are its own example's too."""

    def nan_or_wrong(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
    ):
        if kv_cache_pages.dtype == jnp.float16:
            indices = (slice_indices, kv_cache_pages, total_update_slices)
            return count_minus_one(new_kv_tokens, *indices, page_size=page_size)
        right = kv_cache_update_jax(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        )
        return quiet_nans(right)

    implementation = Implementation("nan_or_wrong", nan_or_wrong)
    quieting_shape = SHRINK_TARGET  # float32: XLA:CPU's own scatter keeps its payloads
    failing_shape = dataclasses.replace(SHRINK_TARGET, dtype="float16")
    holding_nans: list = []
    config = RunConfig(
        settings=settings(QUICK, max_examples=60),
        explicit_examples=False,
        buckets=(quieting_shape, failing_shape),
        before_call=lambda u: (
            holding_nans.append(u) if np.isnan(u.kv_cache_pages.astype(np.float32)).any() else None
        ),
    )
    outcome = run(implementation, CASES[0], config)
    assert outcome.status == "failed"
    shown = outcome.failure
    assert shown.update.kv_cache_pages.dtype == np.float16
    quieted = [
        u
        for u in holding_nans
        if u.kv_cache_pages.dtype == np.float32
        and "nan-payload" in explain(u, call(implementation, u)).codes
    ]
    assert quieted, "no example had its NaN payloads quieted: nothing could be carried over"
    assert "nan-payload" not in outcome.diagnosis.codes, outcome.diagnosis
    assert set(outcome.diagnosis.findings) == set(explain(shown.update, shown.actual).findings)

    unit = units()[0]
    assert unit.cases[0] is CASES[0]
    together = run_together(implementation, unit, config)
    assert together[0].diagnosis == outcome.diagnosis
    pairs = zip(together[0].failure.update.arrays(), shown.update.arrays(), strict=True)
    assert all(a.shape == b.shape and (bits(a) == bits(b)).all() for a, b in pairs)
    for each in together:  # every failure reported is its own example's
        if each.failure is not None and each.failure.actual is not None:
            found = explain(each.failure.update, each.failure.actual).findings
            assert set(each.diagnosis.findings) == set(found), each.case.id


def test_a_big_cache_wrong_in_every_other_row_is_told_briefly_and_counts_every_row():
    """2^20 rows, every other one's old value replaced: each differing row is classified with
    array operations (one sort of a table, not a loop of a row), and the sentence tells
    ``MOST_RUNS`` runs and sums up the rest, naming every row by its ranges."""
    rows = 1 << 20
    update = dataclasses.replace(
        PADDING,
        kv_cache_pages=np.arange(rows, dtype=np.float32).reshape(rows, 1, 1),
        new_kv_tokens=np.zeros((8, 1, 1), np.float32),
    )
    actual = call(load("kvcache:kv_cache_update_jax"), update).copy()
    actual[1::2] = -1.0
    untouched = np.flatnonzero(owners(update)[1::2] < 0)
    diagnosis = explain(update, actual)
    told = [sentence for code, sentence in diagnosis.findings if code == "untouched-row"]
    assert len(told) == MOST_RUNS + 1
    untold = len(untouched) - MOST_RUNS
    assert told[-1].startswith(f"{untold} more runs, rows ")
    assert f"and {untold - MOST_RANGES} more in {untold - MOST_RANGES} ranges" in told[-1]
    assert len(str(diagnosis)) < 2000
