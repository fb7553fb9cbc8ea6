"""Printing the survey: one row per peer and tier, a verdict per property (with the
harness's diagnosis when it gives one), and the seconds it took."""

from __future__ import annotations

from collections.abc import Sequence

from properties import CaseResult
from survey.running import PeerRun

HEADER = ("peer", "function", "tier", "verdicts", "seconds")


def verdict(result: CaseResult) -> str:
    """``property: status`` with the harness's diagnosis codes in brackets when it gives any."""
    text = f"{result.property}: {result.status}"
    if result.diagnosis:
        text += f" [{', '.join(result.diagnosis)}]"
    return text


def rows(run: PeerRun) -> list[tuple[str, ...]]:
    """The table rows of one peer: one per tier checked, or one saying why nothing was."""
    peer = f"{run.peer.package} {run.peer.version}"
    if run.results is None:
        last = run.report.strip().splitlines()[-1:] or ["no output"]
        return [(peer, run.peer.function, "-", f"not checked: {last[0]}", f"{run.seconds:.0f}")]
    tiers = dict.fromkeys(r.tier for r in run.results)
    return [
        (
            peer,
            run.peer.function,
            tier,
            "; ".join(verdict(r) for r in run.results if r.tier == tier),
            f"{sum(r.seconds for r in run.results if r.tier == tier):.0f}",
        )
        for tier in tiers
    ]


def render(runs: Sequence[PeerRun]) -> str:
    """The whole table, columns aligned, then each peer's wall time and constraints."""
    lines = [HEADER, *(row for run in runs for row in rows(run))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    table = "\n".join(
        "  ".join(
            cell.rjust(w) if i == len(HEADER) - 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )
    notes = [
        f"{run.peer.key}: {run.seconds:.0f} s wall, exit {run.returncode}, constraints "
        f"{', '.join(run.peer.constraints) or 'none'}"
        for run in runs
    ]
    return table + "\n\n" + "\n".join(notes)
