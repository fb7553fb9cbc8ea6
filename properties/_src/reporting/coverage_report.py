"""What a report says about coverage: the classes of shapes no example reached (always), and
with ``--coverage`` a table of how many examples reached each class, per implementation."""

from __future__ import annotations

from properties._src.domain.classes import every_label
from properties._src.judging.coverage import gaps
from properties._src.reporting.results import CheckResult


def gap_lines(implementations: list[CheckResult]) -> list[str]:
    """A line per implementation whose examples, over every case, left a class unreached:
    ``passed with gaps`` when every check passed."""
    lines = []
    for impl in implementations:
        missing = gaps(r.coverage for r in impl.results)
        if missing:
            verdict = "passed with gaps" if impl.passed else "gaps"
            lines.append(
                f"{impl.name}: {verdict}: no example reached {len(missing)} "
                f"class{'es' if len(missing) > 1 else ''} of shapes: {'; '.join(missing)}"
            )
    return lines


def coverage_table(implementations: list[CheckResult]) -> str:
    """Each class of shapes, and for each implementation the examples (over every case) that
    reached it; ``-`` for none."""
    header = ("class of shapes", *(impl.name for impl in implementations))
    rows = [
        (
            label,
            *(
                str(sum(r.coverage.get(label, 0) for r in impl.results) or "-")
                for impl in implementations
            ),
        )
        for label in every_label()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    )
