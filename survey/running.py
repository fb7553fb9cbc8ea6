"""Running the harness on one peer: ``python -m properties.cli --profile ci --json ...`` in a
fresh process per peer (its own constraints, its own JAX state), timed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from properties import CaseResult, CheckResult
from survey.peers import Peer

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PeerRun:
    """What the harness said about one peer: its results, read back from its JSON (``None``
    when it wrote none),
    its exit status, its printed report, and the wall time of the whole process."""

    peer: Peer
    results: tuple[CaseResult, ...] | None
    returncode: int
    report: str
    seconds: float


def command(peer: Peer, json_path: Path, profile: str, extra: Sequence[str] = ()) -> list[str]:
    """The ``kvcache-check`` command line (run from this checkout) for ``peer``."""
    arguments = [sys.executable, "-m", "properties.cli", "--profile", profile, "--jobs", "1"]
    arguments += ["--json", str(json_path), "--impl", f"survey.targets:{peer.key}"]
    for constraint in peer.constraints:
        arguments += ["--constraint", constraint]
    return arguments + list(extra)


def run(peer: Peer, reports: Path, profile: str = "ci", extra: Sequence[str] = ()) -> PeerRun:
    """Check ``peer``; its report and JSON are kept in ``reports`` as ``<key>.txt``/``.json``."""
    reports.mkdir(parents=True, exist_ok=True)
    json_path = reports / f"{peer.key}.json"
    json_path.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        command(peer, json_path, profile, extra),
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    report = done.stdout + (f"\n--- stderr ---\n{done.stderr}" if done.stderr.strip() else "")
    (reports / f"{peer.key}.txt").write_text(report)
    results = None
    if json_path.exists():
        checked = json.loads(json_path.read_text())["implementations"][0]
        results = CheckResult.from_dict(checked).results
    return PeerRun(peer, results, done.returncode, report, seconds)
