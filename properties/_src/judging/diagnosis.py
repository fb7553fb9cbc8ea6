"""What went wrong, in a word a program can read and a sentence a person can.

``explain(update, actual)`` compares a result with the oracle's and names every kind of
difference it finds (a result can have several: NaN payloads quieted and rows dropped):

* ``shape-or-dtype``: the result is not the cache's shape or dtype;
* ``nan-payload``: elements are NaN in both but their bits differ;
* ``signed-zero``: elements are zero in both but their signs differ;
* ``padding-copied``: rows hold what a padding column's slice would write there;
* ``untouched-row``: a row no real column writes changed otherwise;
* ``values``: a row a real column writes holds something else.

Each differing row is told by what it holds: a new token, an input cache row, another row of
the expected cache (a shift), or nothing found in the input. Raises get ``raised`` (the
implementation's own code) or ``interpreter-fault`` (JAX's TPU interpreter itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.judging.checks import bits, ranges
from properties._src.judging.comparison import NAN_PAYLOAD, SIGNED_ZERO, is_floating

INTERPRETER_FAULT = "interpreter-fault"
"""JAX's TPU interpreter faulted in its own code: never the implementation's failure alone."""

CODES = (
    NAN_PAYLOAD,
    SIGNED_ZERO,
    "values",
    "untouched-row",
    "padding-copied",
    "raised",
    INTERPRETER_FAULT,
    "shape-or-dtype",
)


@dataclass(frozen=True)
class Diagnosis:
    """Findings, each a code from ``CODES`` and a sentence saying where and what."""

    findings: tuple[tuple[str, str], ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes found, in ``CODES`` order, each once."""
        found = {code for code, _ in self.findings}
        return tuple(code for code in CODES if code in found)

    def only(self, codes) -> Diagnosis:
        """The findings with one of ``codes``."""
        return Diagnosis(tuple(f for f in self.findings if f[0] in codes))

    def without(self, codes) -> Diagnosis:
        """The findings with none of ``codes``."""
        return Diagnosis(tuple(f for f in self.findings if f[0] not in codes))

    def __add__(self, other: Diagnosis) -> Diagnosis:
        return Diagnosis(self.findings + other.findings)

    def __str__(self) -> str:
        return " ".join(sentence for _, sentence in self.findings)


NONE = Diagnosis()


def single(code: str, sentence: str) -> Diagnosis:
    assert code in CODES, code
    return Diagnosis(((code, sentence),))


MOST_RUNS = 4
"""Runs of differing rows told one by one, for each code; the rest are summed up in one
sentence, so a result wrong everywhere in a big cache is explained quickly and briefly."""


def _rows_word(indices) -> str:
    return f"row {ranges(indices)}" if len(indices) == 1 else f"rows {ranges(indices)}"


# What a differing row holds, as a code per row.
PADDING, TOKEN, CACHE, EXPECTED, UNKNOWN = range(5)


@dataclass(frozen=True)
class _Holds:
    """What one differing row holds: ``kind`` with a source row ``index`` (for runs)."""

    kind: int
    index: int = -1
    column: int = -1  # the padding column, for PADDING


def _row_values(array: np.ndarray) -> np.ndarray:
    """Each row's bits as one value, so rows compare, sort and search as wholes: an unsigned
    integer where a row fits in 8 bytes (sorting those is fast), else raw bytes."""
    width = math.prod(array.shape[1:]) * array.dtype.itemsize
    rows = np.ascontiguousarray(bits(array)).view(np.uint8).reshape(array.shape[0], width)
    if width <= 8:
        padded = np.zeros((array.shape[0], 8), np.uint8)
        padded[:, :width] = rows
        return padded.view(np.uint64).ravel()
    return rows.view(np.dtype((np.void, width))).ravel()


class _FirstRow:
    """For many rows at once, the first row of an array holding the same bits."""

    def __init__(self, values: np.ndarray):
        self._sorted, self._first = np.unique(values, return_index=True)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        """The first row holding each query's bits, or -1."""
        if not len(self._sorted):
            return np.full(len(queries), -1)
        at = np.minimum(np.searchsorted(self._sorted, queries), len(self._sorted) - 1)
        return np.where(self._sorted[at] == queries, self._first[at], -1)


def _what_rows_hold(
    update: Update, actual: np.ndarray, expected: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of the sorted differing ``rows``: what it holds (a code above), the source row
    and the padding column. A padding column's slice comes first (the first column whose
    in-bounds slice would write that token there), then the row's old value, a nearby row of
    the expected cache (a shift of less than a page), a new token, any input cache row, any
    expected row."""
    got = _row_values(actual)[rows]
    kind = np.full(len(rows), UNKNOWN)
    index = np.full(len(rows), -1)
    column = np.full(len(rows), -1)
    tokens = _row_values(update.new_kv_tokens)
    dst, src, length = update.slice_indices.astype(np.int64)
    padding = np.arange(update.num_real_slices, update.slice_indices.shape[1])
    in_bounds = padding[
        (dst[padding] >= 0)
        & (length[padding] > 0)
        & (src[padding] >= 0)
        & (src[padding] + length[padding] <= len(tokens))
    ]
    for c in in_bounds:
        lo, hi = np.searchsorted(rows, (dst[c], dst[c] + length[c]))
        at = lo + np.flatnonzero(kind[lo:hi] == UNKNOWN)
        token = src[c] + rows[at] - dst[c]
        hit = at[got[at] == tokens[token]]
        kind[hit], index[hit], column[hit] = PADDING, src[c] + rows[hit] - dst[c], c
    cache = _row_values(update.kv_cache_pages)
    old = (kind == UNKNOWN) & (got == cache[rows])
    kind[old], index[old] = CACHE, rows[old]
    if not (kind == UNKNOWN).any():
        return kind, index, column
    near = _FirstRow(_row_values(expected))(got)
    shifted = (kind == UNKNOWN) & (near >= 0) & (np.abs(near - rows) < update.page_size)
    kind[shifted], index[shifted] = EXPECTED, near[shifted]
    for code, found in (
        (TOKEN, lambda: _FirstRow(tokens)(got)),
        (CACHE, lambda: _FirstRow(cache)(got)),
        (EXPECTED, lambda: near),
    ):
        if not (kind == UNKNOWN).any():
            break
        first = found()
        hit = (kind == UNKNOWN) & (first >= 0)
        kind[hit], index[hit] = code, first[hit]
    return kind, index, column


def _runs(
    rows: np.ndarray, kind: np.ndarray, index: np.ndarray, column: np.ndarray, owner: np.ndarray
) -> np.ndarray:
    """Where each run of ``rows`` starts: consecutive rows of one writer (a column, or none)
    holding consecutive rows of one source."""
    goes_on = (
        (np.diff(rows) == 1)
        & (owner[rows[1:]] == owner[rows[:-1]])
        & (kind[1:] == kind[:-1])
        & (column[1:] == column[:-1])
        & (kind[1:] != UNKNOWN)
        & (np.diff(index) == 1)
    )
    return np.concatenate(([0], np.flatnonzero(~goes_on) + 1))


def _held(rows: np.ndarray, h: _Holds) -> str:
    last = h.index + len(rows) - 1
    span = f"{h.index}" if last == h.index else f"{h.index}-{last}"
    plural = "s" if len(rows) > 1 else ""
    if h.kind == PADDING:
        return f"new token{plural} {span}, the slice of padding column {h.column}"
    if h.kind == TOKEN:
        return f"new token{plural} {span}"
    if h.kind == CACHE:
        if h.index == rows[0]:
            return "their old values" if len(rows) > 1 else "its old value"
        return f"what cache row{plural} {span} held before"
    if h.kind == EXPECTED:
        shift = h.index - int(rows[0])
        return (
            f"what row{plural} {span} should (shifted by {abs(shift)} row{'s' * (abs(shift) > 1)})"
        )
    return "values found nowhere in the input"


def _should(rows: np.ndarray, owner: np.ndarray) -> str:
    """Who should write ``rows`` (one writer: ``_runs`` splits at a change of writer)."""
    column = int(owner[rows[0]])
    it = "them" if len(rows) > 1 else "it"
    return f"column {column} writes {it}" if column >= 0 else f"no real column writes {it}"


def owners(update: Update) -> np.ndarray:
    """For each cache row, the real column writing it, or -1."""
    owner = np.full(update.kv_cache_pages.shape[0], -1)
    for column, dst, _, length in update.columns():
        owner[dst : dst + length] = column
    return owner


_CODES = ("padding-copied", "values", "untouched-row")  # what a run of differing rows is
_UNTOLD = {
    "padding-copied": "hold the slices of padding columns",
    "values": "hold something else where real columns write them",
    "untouched-row": "changed where no real column writes them",
}


def _told(
    rows: np.ndarray, held: tuple[np.ndarray, np.ndarray, np.ndarray], owner: np.ndarray
) -> Diagnosis:
    """A sentence for each run of differing ``rows`` (what they hold, who should write them),
    up to ``MOST_RUNS`` of each code in row order, then one for the rest of each code."""
    kind, index, column = held
    starts = _runs(rows, kind, index, column, owner)
    ends = np.append(starts[1:], len(rows))
    written = owner[rows[starts]] >= 0
    # Each run's code as an index into _CODES (a string per run is slow for millions of runs).
    run_codes = np.where(kind[starts] == PADDING, 0, np.where(written, 1, 2))
    present, first_run = np.unique(run_codes, return_index=True)
    found, untold = NONE, []
    for code_index in present[np.argsort(first_run)]:  # in row order
        code = _CODES[code_index]
        runs = np.flatnonzero(run_codes == code_index)
        told, rest = runs[:MOST_RUNS], runs[MOST_RUNS:]
        for r in told:
            run_rows = rows[starts[r] : ends[r]]
            first = _Holds(int(kind[starts[r]]), int(index[starts[r]]), int(column[starts[r]]))
            verb = "holds" if len(run_rows) == 1 else "hold"
            found += single(
                code,
                f"{_rows_word(run_rows).capitalize()} {verb} {_held(run_rows, first)}, "
                f"where {_should(run_rows, owner)}.",
            )
        if len(rest):
            in_rest = np.repeat(np.isin(np.arange(len(starts)), rest), ends - starts)
            more = rows[in_rest]
            untold.append(
                single(code, f"{len(rest)} more runs, {_rows_word(more)}, {_UNTOLD[code]}.")
            )
    return sum(untold, found)


def explain(update: Update, actual: np.ndarray) -> Diagnosis:
    """Every kind of difference between ``actual`` and the oracle's result (``NONE`` if none)."""
    expected = reference_update(*update.arrays(), page_size=update.page_size)
    if (actual.shape, actual.dtype) != (expected.shape, expected.dtype):
        return single(
            "shape-or-dtype",
            f"The result is {actual.dtype}{list(actual.shape)}; "
            f"the cache is {expected.dtype}{list(expected.shape)}.",
        )
    differs = bits(expected) != bits(actual)
    if not differs.any():
        return NONE
    found = NONE
    per_row = tuple(range(1, differs.ndim))
    value_differs = differs
    if is_floating(expected.dtype):
        with np.errstate(invalid="ignore"):  # signalling NaNs are what we are looking for
            nan_only = differs & np.isnan(expected) & np.isnan(actual)
            zero_only = differs & (expected == 0) & (actual == 0)
        value_differs = differs & ~nan_only & ~zero_only
        # A row wrong by value is told by what it holds; NaN and zero bits are named only in
        # rows that are otherwise right.
        right_by_value = ~value_differs.any(axis=per_row, keepdims=True)
        for mask, code, what in (
            (
                nan_only & right_by_value,
                NAN_PAYLOAD,
                "NaNs with other payloads (other bits) than the oracle's",
            ),
            (zero_only & right_by_value, SIGNED_ZERO, "zeros of the other sign than the oracle's"),
        ):
            if mask.any():
                masked = np.flatnonzero(mask.any(axis=per_row))
                found += single(
                    code,
                    f"{_rows_word(masked).capitalize()} {'holds' if len(masked) == 1 else 'hold'} "
                    f"{int(mask.sum())} {what}; "
                    f"compared by value they agree.",
                )
    rows = np.flatnonzero(value_differs.any(axis=per_row))
    if not len(rows):
        return found
    return found + _told(rows, _what_rows_hold(update, actual, expected, rows), owners(update))
