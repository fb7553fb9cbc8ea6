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

from dataclasses import dataclass

import numpy as np

from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.judging.checks import bits
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

    def elsewhere(self) -> Diagnosis:
        """The same findings, said of another example than the one shown."""
        return Diagnosis(tuple((code, f"On another example: {s}") for code, s in self.findings))

    def __add__(self, other: Diagnosis) -> Diagnosis:
        return Diagnosis(self.findings + other.findings)

    def __str__(self) -> str:
        return " ".join(sentence for _, sentence in self.findings)


NONE = Diagnosis()


def single(code: str, sentence: str) -> Diagnosis:
    assert code in CODES, code
    return Diagnosis(((code, sentence),))


def ranges(indices) -> str:
    """``[3, 4, 5, 9]`` as ``"3-5, 9"``."""
    parts: list[list[int]] = []
    for i in sorted(int(i) for i in indices):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)


def _rows_word(indices) -> str:
    return f"row {ranges(indices)}" if len(indices) == 1 else f"rows {ranges(indices)}"


@dataclass(frozen=True)
class _Holds:
    """What one differing row holds: ``kind`` with a source row ``index`` (for runs)."""

    kind: str  # "padding", "token", "cache", "expected", "unknown"
    index: int = -1
    column: int = -1  # the padding column, for "padding"


def _row_keys(array: np.ndarray) -> dict[bytes, int]:
    """Each row's bytes to the first row holding them."""
    rows = bits(array).reshape(array.shape[0], -1)
    found: dict[bytes, int] = {}
    for i, row in enumerate(rows):
        found.setdefault(row.tobytes(), i)
    return found


def _padding_sources(update: Update, row: int) -> list[tuple[int, int]]:
    """``(padding column, new-token row)`` for each in-bounds padding slice covering ``row``."""
    tokens = update.new_kv_tokens.shape[0]
    found = []
    for column in range(update.num_real_slices, update.slice_indices.shape[1]):
        dst, src, length = (int(v) for v in update.slice_indices[:, column])
        if 0 <= dst <= row < dst + length and src >= 0 and src + length <= tokens:
            found.append((column, src + row - dst))
    return found


def _holds(update: Update, actual: np.ndarray, row: int, keys) -> _Holds:
    got = bits(actual[row]).tobytes()
    token_bits = bits(update.new_kv_tokens).reshape(update.new_kv_tokens.shape[0], -1)
    for column, token in _padding_sources(update, row):
        if token_bits[token].tobytes() == got:
            return _Holds("padding", token, column)
    if bits(update.kv_cache_pages[row]).tobytes() == got:
        return _Holds("cache", row)  # its old value
    shifted = keys["expected"].get(got)
    if shifted is not None and abs(shifted - row) < update.page_size:
        return _Holds("expected", shifted)
    for kind in ("token", "cache", "expected"):
        if (index := keys[kind].get(got)) is not None:
            return _Holds(kind, index)
    return _Holds("unknown")


def _runs(
    rows: list[int], holds: list[_Holds], owner: np.ndarray
) -> list[tuple[list[int], _Holds]]:
    """Consecutive rows of one writer (a column, or none) holding consecutive rows of one
    source, as (rows, what the first holds)."""
    runs: list[tuple[list[int], _Holds]] = []
    for row, h in zip(rows, holds, strict=True):
        if runs:
            last_rows, first = runs[-1]
            if (
                row == last_rows[-1] + 1
                and owner[row] == owner[last_rows[-1]]
                and (h.kind, h.column) == (first.kind, first.column)
                and h.kind != "unknown"
                and h.index == first.index + len(last_rows)
            ):
                last_rows.append(row)
                continue
        runs.append(([row], h))
    return runs


def _held(rows: list[int], h: _Holds) -> str:
    last = h.index + len(rows) - 1
    span = f"{h.index}" if last == h.index else f"{h.index}-{last}"
    plural = "s" if len(rows) > 1 else ""
    if h.kind == "padding":
        return f"new token{plural} {span}, the slice of padding column {h.column}"
    if h.kind == "token":
        return f"new token{plural} {span}"
    if h.kind == "cache":
        if h.index == rows[0]:
            return "their old values" if len(rows) > 1 else "its old value"
        return f"what cache row{plural} {span} held before"
    if h.kind == "expected":
        shift = h.index - rows[0]
        return (
            f"what row{plural} {span} should (shifted by {abs(shift)} row{'s' * (abs(shift) > 1)})"
        )
    return "values found nowhere in the input"


def _should(rows: list[int], owner: np.ndarray) -> str:
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
        for mask, code, what in (
            (nan_only, NAN_PAYLOAD, "NaNs with other payloads (other bits) than the oracle's"),
            (zero_only, SIGNED_ZERO, "zeros of the other sign than the oracle's"),
        ):
            if mask.any():
                masked = np.flatnonzero(mask.any(axis=per_row))
                found += single(
                    code,
                    f"{_rows_word(masked).capitalize()} {'holds' if len(masked) == 1 else 'hold'} "
                    f"{int(mask.sum())} {what}; "
                    f"compared by value they agree.",
                )
    rows = [int(r) for r in np.flatnonzero(value_differs.any(axis=per_row))]
    if not rows:
        return found
    owner = owners(update)
    keys = {
        "token": _row_keys(update.new_kv_tokens),
        "cache": _row_keys(update.kv_cache_pages),
        "expected": _row_keys(expected),
    }
    holds = [_holds(update, actual, r, keys) for r in rows]
    for run_rows, first in _runs(rows, holds, owner):
        written = owner[run_rows[0]] >= 0
        code = (
            "padding-copied"
            if first.kind == "padding"
            else ("values" if written else "untouched-row")
        )
        verb = "holds" if len(run_rows) == 1 else "hold"
        found += single(
            code,
            f"{_rows_word(run_rows).capitalize()} {verb} {_held(run_rows, first)}, "
            f"where {_should(run_rows, owner)}.",
        )
    return found
