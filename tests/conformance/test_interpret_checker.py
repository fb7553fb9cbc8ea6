"""What the TPU interpreter catches by itself when the kernel gets input outside the contract.

Run under ``properties._src.calling.implementations.call`` (TPU interpret mode, out-of-bounds reads
raising, race detection on), the kernel is its own partial checker: a DMA that leaves its
buffer raises. ``CHECKER`` records, for one small case per way of breaking a rule, what
happened (JAX 0.10.2) and why; the test replays every case and asserts the record, so a
change in the kernel or in JAX shows up here. In short:

* caught at trace time: every argument rule (the kernel checks shapes and dtypes itself);
* caught by the simulated DMAs: negative starts, ``length > page_size`` (it overflows the
  VMEM scratch), sources and destinations past their arrays;
* silent, caught only by ``kvcache.validate``: negative lengths and a count outside
  ``[0, num_slices]`` (the kernel's own predicate skips or pads them), and overlapping
  destinations: across grid steps the later column wins; within one grid step the
  interpreter lands the *earlier* column last and reports no race.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from oracle.contract import ContractViolation, Update, violations
from properties._src.calling.implementations import RaceDetected, call, load
from properties._src.cases.catalog import differing_rows

KERNEL = load("kvcache:kv_cache_update")

REFUSED = "refused at trace time"
READ = "out-of-bounds read"
WRITE = "out-of-bounds write"
ASSERTION = "interpreter assertion"
RACE = "race"
NOTHING = "silent: nothing written"
IN_ORDER = "silent: columns copied in order"
OUT_OF_ORDER = "silent: an earlier column's rows land last"


def _update(columns, *, count=None, num_slices=4, page_size=4, **arrays) -> Update:
    """Tokens ``1..8``, a 4-page cache of rows ``-1..-16``, and these real columns."""
    slice_indices = np.zeros((3, num_slices), dtype=np.int32)
    for column, value in columns.items():
        slice_indices[:, column] = value
    fields = {
        "new_kv_tokens": np.arange(1, 9, dtype=np.float32).reshape(8, 1, 1),
        "slice_indices": slice_indices,
        "kv_cache_pages": -np.arange(1, 17, dtype=np.float32).reshape(16, 1, 1),
        "total_update_slices": np.array([len(columns) if count is None else count], np.int32),
        "page_size": page_size,
    }
    return Update(**(fields | arrays))


@dataclass(frozen=True)
class Case:
    """One way of breaking ``rule``, what the interpreted kernel did, and why."""

    rule: str
    update: Update
    outcome: str
    reason: str


CHECKER: dict[str, Case] = {
    "page size 0": Case(
        "page-size", _update({}, page_size=0), REFUSED, "the kernel checks the argument rules"
    ),
    "2-D tokens": Case(
        "tokens-rank",
        _update({}, new_kv_tokens=np.ones((8, 1), np.float32)),
        REFUSED,
        "the kernel checks the argument rules",
    ),
    "float slice indices": Case(
        "indices-dtype",
        _update({}, slice_indices=np.zeros((3, 4), np.float32)),
        REFUSED,
        "the kernel checks the argument rules",
    ),
    "count of shape [2]": Case(
        "count-shape",
        _update({}, total_update_slices=np.zeros(2, np.int32)),
        REFUSED,
        "the kernel checks the argument rules",
    ),
    "negative cache start": Case(
        "starts-nonnegative",
        _update({0: (-2, 0, 1)}),
        ASSERTION,
        "the simulated store asserts a non-negative start (not a clean out-of-bounds error)",
    ),
    "negative new-token start": Case(
        "starts-nonnegative",
        _update({0: (0, -1, 2)}),
        READ,
        "the DMA reads row -1 of the new tokens",
    ),
    "length page_size + 1": Case(
        "length-range",
        _update({0: (0, 0, 5)}),
        WRITE,
        "phase 1 writes 5 rows into a 4-row VMEM scratch slot",
    ),
    "negative length": Case(
        "length-range",
        _update({0: (0, 0, -3)}),
        NOTHING,
        "a column is active only when its length is > 0, so no DMA starts",
    ),
    "source past the tokens": Case(
        "source-in-bounds",
        _update({0: (0, 7, 2)}),
        READ,
        "the DMA reads rows 7..8 of 8 new tokens",
    ),
    "destination past the cache": Case(
        "destination-in-bounds",
        _update({0: (15, 0, 2)}),
        WRITE,
        "the DMA writes rows 15..16 of a 16-row cache",
    ),
    "overlap in one grid step": Case(
        "destinations-disjoint",
        _update({0: (0, 0, 2), 1: (1, 2, 2)}),
        OUT_OF_ORDER,
        "both DMAs are in flight at once on one semaphore; the interpreter lands column 0's "
        "rows last (row 1 keeps column 0's token) and its race detector does not flag "
        "DMA-to-DMA overlap; a TPU promises no order either",
    ),
    "overlap across grid steps": Case(
        "destinations-disjoint",
        _update({0: (0, 0, 2), 8: (1, 2, 2)}, count=9, num_slices=16),
        IN_ORDER,
        "grid steps run one after another, so the later column wins, here and on a TPU",
    ),
    "count past the columns": Case(
        "count-range",
        _update({0: (0, 0, 2)}, count=9),
        IN_ORDER,
        "columns past num_slices are the kernel's own zero padding, so copy nothing",
    ),
    "negative count": Case(
        "count-range",
        _update({0: (0, 0, 2)}, count=-1),
        NOTHING,
        "no column index is < -1, so no column is active",
    ),
}


def copied_in_order(update: Update) -> np.ndarray:
    """Every column with length > 0, copied in order: what a kernel without checks would do."""
    cache = update.kv_cache_pages.copy()
    for _, dst, src, length in update.columns():
        if length > 0:
            cache[dst : dst + length] = update.new_kv_tokens[src : src + length]
    return cache


def run_kernel(update: Update) -> str:
    """Run the interpreted kernel; name what happened."""
    try:
        result = call(KERNEL, update)
    except ContractViolation:
        return REFUSED
    except RaceDetected:
        return RACE
    except Exception as error:  # the interpreter's errors arrive wrapped in a JaxRuntimeError
        text = str(error)
        for marker, outcome in (
            ("Out-of-bounds read", READ),
            ("Out-of-bounds write", WRITE),
            ("AssertionError", ASSERTION),
        ):
            if marker in text:
                return outcome
        raise
    if not differing_rows(update.kv_cache_pages, result).size:
        return NOTHING
    return IN_ORDER if not differing_rows(copied_in_order(update), result).size else OUT_OF_ORDER


@pytest.mark.parametrize("name", CHECKER)
def test_interpreted_kernel_on_invalid_input(name):
    case = CHECKER[name]
    assert {v.rule for v in violations(case.update)} == {case.rule}
    assert run_kernel(case.update) == case.outcome, case.reason
