"""A counterexample, for a person: the layout, the pages with the slices marked, the rows
that differ, and a Python snippet that reproduces it."""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.calling.implementations import EAGER
from properties._src.drawing.contents import row_ids
from properties._src.judging.checks import bits, differing_rows
from properties._src.judging.diagnosis import Diagnosis, owners
from properties._src.judging.steps import Failure

STEPS_REPLAYED = 3  # earlier steps of a sequence written into the snippet, at most

CELLS_PER_LINE = 64
ROWS_SHOWN = 8
VALUES_SHOWN = 8


def _letter(column: int) -> str:
    return string.ascii_lowercase[column % 26]


def _layout(update: Update) -> str:
    rows, heads, head_dim = update.kv_cache_pages.shape
    return (
        f"page_size {update.page_size}, {rows // update.page_size} pages ({rows} cache rows), "
        f"{update.new_kv_tokens.shape[0]} new tokens, [heads, head_dim] [{heads}, {head_dim}], "
        f"{update.kv_cache_pages.dtype}; n = {update.num_real_slices} of "
        f"{update.slice_indices.shape[1]} columns"
    )


def _columns(update: Update) -> list[str]:
    ps, lines = update.page_size, []
    for column, dst, src, length in update.columns():
        page, offset = divmod(dst, ps)
        lines.append(
            f"  {_letter(column)}  column {column}: cache [{dst}, {dst + length}) <- new "
            f"[{src}, {src + length}), page {page} offset {offset}, length {length}"
        )
    padding = update.slice_indices[:, update.num_real_slices :].T.tolist()
    if padding:
        lines.append(f"     padding columns (dst, src, len): {[tuple(c) for c in padding]}")
    return lines


def _pages(update: Update, differs: np.ndarray) -> list[str]:
    """One line per page that is written or differs: a cell per row. The pages are picked
    with NumPy: a cache of millions of rows (a shrink stopped on a large shape) is rendered
    in a blink, not row by row in Python."""
    ps, owner = update.page_size, owners(update)
    shown = ((owner >= 0) | differs).reshape(-1, ps).any(axis=1)
    lines, skipped = [], int(shown.size - shown.sum())
    for page in map(int, np.flatnonzero(shown)):
        rows = range(page * ps, (page + 1) * ps)
        cells = "".join(
            (_letter(owner[r]).upper() if differs[r] else _letter(owner[r]))
            if owner[r] >= 0
            else ("!" if differs[r] else ".")
            for r in rows
        )
        for start in range(0, ps, CELLS_PER_LINE):
            label = f"page {page:>3} rows {rows[start]:>5}+" if start == 0 else " " * 20
            lines.append(f"  {label} |{cells[start : start + CELLS_PER_LINE]}|")
    if skipped:
        lines.append(f"  ({skipped} pages neither written nor changed are not shown)")
    return lines


def _element(value: np.ndarray, as_hex: bool) -> str:
    text = np.array2string(np.asarray(value).reshape(1))[1:-1].strip()
    return f"{text} ({hex(int(bits(np.asarray(value).reshape(1))[0]))})" if as_hex else text


def _row_diffs(expected: np.ndarray, actual: np.ndarray, rows: np.ndarray, ps: int) -> list[str]:
    """Each differing row (up to ``ROWS_SHOWN``) with the elements that differ in it."""
    lines = []
    for row in rows[:ROWS_SHOWN]:
        page, offset = divmod(int(row), ps)
        differs = bits(expected[row]) != bits(actual[row])
        where = np.argwhere(differs)
        lines.append(
            f"  row {row} (page {page} offset {offset}): {len(where)} of {differs.size} "
            f"elements differ ([head, dim] expected -> actual)"
        )
        for position in where[:VALUES_SHOWN]:
            index = tuple(int(i) for i in position)
            want, got = expected[row][index], actual[row][index]
            alike = _element(want, False) == _element(got, False)
            lines.append(f"    {list(index)}: {_element(want, alike)} -> {_element(got, alike)}")
        if len(where) > VALUES_SHOWN:
            lines.append(f"    ... and {len(where) - VALUES_SHOWN} more elements")
    if len(rows) > ROWS_SHOWN:
        lines.append(f"  ... and {len(rows) - ROWS_SHOWN} more rows")
    return lines


def _literal(array: np.ndarray) -> str:
    """Python that rebuilds ``array`` bit for bit (readable when it holds labelled rows)."""
    for sign in (1, -1):
        if np.array_equal(bits(array), bits(row_ids(array.shape, array.dtype, sign))):
            return f'row_ids({array.shape}, "{array.dtype}", {sign})'
    dtype = f'jnp.dtype("{array.dtype}")'
    return (
        f'np.frombuffer(bytes.fromhex("{array.tobytes().hex()}"), {dtype}).reshape({array.shape})'
    )


def _update_literal(update: Update) -> str:
    count = update.total_update_slices
    return f"""Update(
    new_kv_tokens={_literal(update.new_kv_tokens)},
    slice_indices=np.array({update.slice_indices.tolist()}, dtype=np.{update.slice_indices.dtype}),
    kv_cache_pages={_literal(update.kv_cache_pages)},
    total_update_slices=np.array({count.tolist()}, dtype=np.{count.dtype}),
    page_size={update.page_size},
)"""


def _mode_argument(mode: str, detect_races: bool = True) -> str:
    """``call``'s arguments after the update, for the calling mode and the race detector."""
    races = "" if detect_races else ", detect_races=False"
    return ("" if mode == EAGER else f", mode={mode!r}") + races


def snippet(
    implementation: str, failure: Failure, mesh: str | None = None, compare: str = "bits"
) -> str:
    """A script that runs ``implementation`` on the failing update, called as it was (placed
    on ``mesh``, if given, as ``"pages=P,heads=H"``; with the TPU interpreter's race detector
    on or off, as when the finding was seen), after the steps before it in its
    sequence (the last few), and verifies the property it broke, comparing as ``compare``
    says. It imports only from ``properties`` (the public face), so it keeps working when the
    harness's own modules move."""
    on_mesh = f', mesh=MeshShape.parse("{mesh}").build()' if mesh else ""
    before = failure.before[-STEPS_REPLAYED:]
    lines = [
        "import jax.numpy as jnp",
        "import numpy as np",
        "",
        "from properties import (",
        "    MESH_PROPERTIES, PROPERTIES, MeshShape, Update, call, load, row_ids",
        ")",
        "",
        f'implementation = load("{implementation}")',
    ]
    if len(failure.before) > len(before):
        lines.append(
            f"# {len(failure.before) - len(before)} earlier steps of the sequence left out"
        )
    for step in before:
        lines += [
            f"# {step}",
            f"call(implementation, {_update_literal(step.update)}"
            f"{_mode_argument(step.mode)}{on_mesh})",
        ]
    called = (
        f"call(implementation, update{_mode_argument(failure.mode, failure.detect_races)}{on_mesh})"
    )
    lines += [
        f"update = {_update_literal(failure.update)}",
        f'prop = next(p for p in PROPERTIES + MESH_PROPERTIES if p.name == "{failure.prop}")',
        f'prop.verify(update, {called}, "{compare}")',
    ]
    return "\n".join(lines) + "\n"


def render(
    implementation: str,
    failure: Failure,
    mesh: str | None = None,
    *,
    diagnosis: Diagnosis | None = None,
    replay: str | None = None,
    compare: str = "bits",
    notes: Sequence[str] = (),
) -> str:
    """The whole counterexample as text: what is wrong (the diagnosis, for a person), the
    layout, the pages, the elements that differ, how to replay the run and the example (with
    the sequence's steps before it, called as they were). ``notes`` follow the diagnosis (a
    budget that ran out)."""
    update, actual = failure.update, failure.actual
    expected = reference_update(*update.arrays(), page_size=update.page_size)
    differs = np.zeros(len(expected), dtype=bool)
    if actual is not None and (actual.shape, actual.dtype) == (expected.shape, expected.dtype):
        differs[differing_rows(expected, actual)] = True
    diagnosis = diagnosis or failure.diagnosis
    lines = [failure.message]
    if diagnosis.codes:
        lines.append(f"diagnosis ({', '.join(diagnosis.codes)}): {diagnosis}")
    lines += notes
    if failure.example:
        lines.append(
            f"explicit example: {failure.example!r} (properties/_src/cases/regressions.py)"
        )
    lines += [_layout(update), "columns:", *_columns(update)]
    lines += [
        "pages (a letter: the row that column writes; capital or '!': the row differs):",
        *_pages(update, differs),
    ]
    if actual is not None and differs.any():
        lines += [
            "rows that differ:",
            *_row_diffs(expected, actual, np.flatnonzero(differs), update.page_size),
        ]
    if replay:
        lines.append(f"replay: {replay}")
    lines += ["reproduce:", snippet(implementation, failure, mesh, compare)]
    return "\n".join(lines)
