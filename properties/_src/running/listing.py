"""What a run would check, as text (``kvcache-check --list``): the cases, properties, tiers,
profiles, the pool's shapes (fitted to the run's constraints), the dtypes, the calling modes,
the statuses and the diagnoses. Read from the lists the harness runs from, so it cannot drift
from them; runs nothing."""

from __future__ import annotations

from collections.abc import Sequence

from properties._src.calling.implementations import CALLING_MODES
from properties._src.cases.catalog import CASES, MESH_CASES, MESH_PROPERTIES, PROPERTIES
from properties._src.domain.buckets import (
    BUCKETS,
    DTYPES,
    INDEX_DTYPES,
    INTERPRETER_MAX_COLUMNS,
    SHRINK_TARGET,
    Bucket,
)
from properties._src.domain.constraints import Constraint, fitting
from properties._src.drawing.shapes import FREE_PROFILES, interpreted_columns
from properties._src.judging.diagnosis import CODES
from properties._src.reporting.results import STATUSES
from properties._src.running.api import TIERS
from properties._src.running.profiles import PROFILES

SHAPE_HEADER = (
    "page_size",
    "pages",
    "heads",
    "head_dim",
    "dtype",
    "tokens",
    "columns",
    "count",
    "table dtype",
    "count dtype",
)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _shape_note(bucket: Bucket, interpreted: int) -> str:
    """What the listing says of ``bucket``; ``interpreted``: the columns a many-column shape
    is drawn with for a kernel run in the TPU interpreter (``shapes.interpreted_columns``)."""
    if bucket == SHRINK_TARGET:
        return "counterexamples shrink here; the serving loop's shape"
    if bucket.num_slices > INTERPRETER_MAX_COLUMNS and interpreted:
        return f"drawn with {interpreted} columns for a kernel run in the TPU interpreter"
    return ""


def listing(constraints: tuple[Constraint, ...] = ()) -> str:
    """Everything ``kvcache-check`` would check under ``constraints`` and how it reports it."""
    cases = [(c.name, c.tier.name.lower(), "") for c in CASES]
    cases += [(c.name, c.tier.name.lower(), "with --mesh") for c in MESH_CASES]
    interpreted = interpreted_columns(constraints)
    shapes = [
        (
            str(b.page_size),
            str(b.num_pages),
            str(b.heads),
            str(b.head_dim),
            b.dtype,
            str(b.num_tokens),
            str(b.num_slices),
            str(list(b.count_shape)),
            b.table_dtype,
            b.count_dtype,
            _shape_note(b, interpreted),
        )
        for b in fitting(BUCKETS, constraints)
    ]
    profiles = [
        f"  {name}: {s.max_examples} examples per case (--max-examples)"
        + (", derandomised" if s.derandomize else "")
        + (", shapes drawn beyond the pool too" if name in FREE_PROFILES else "")
        for name, s in PROFILES.items()
    ]
    return "\n".join(
        [
            "cases (property, tier):",
            *_columns(cases),
            "properties: " + ", ".join(p.name for p in PROPERTIES),
            "properties with --mesh: " + ", ".join(p.name for p in MESH_PROPERTIES),
            "tiers: " + ", ".join(TIERS),
            "profiles:",
            *profiles,
            "shapes (the pool"
            + (f", fitted to {', '.join(map(str, constraints))}):" if constraints else "):"),
            *_columns([(*SHAPE_HEADER, ""), *shapes]),
            "dtypes: " + ", ".join(DTYPES),
            "slice-table and count dtypes: " + ", ".join(INDEX_DTYPES),
            "calling modes: " + ", ".join(f"{n} ({m.phrase})" for n, m in CALLING_MODES.items()),
            "statuses: " + ", ".join(STATUSES),
            "diagnoses: " + ", ".join(CODES),
        ]
    )
