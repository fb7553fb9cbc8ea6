"""Seconds to a verdict: ``kvcache-check`` run as a user runs it, on four implementations.

A passing fallback, a passing kernel in the TPU interpreter, and the original module's
fallback and kernel, which fail (``properties.known_bad.lineage``). Each is checked by a fresh
``python -m properties.cli`` process (JAX's start included) with an empty compilation cache
of its own, so every run is cold, as a first run is; a row gives the median of ``--runs``
runs, with the CPU seconds of the process and its children (less moved by other work on a
shared machine than the wall clock), what the JSON says (verdicts, shrinks stopped at
``--shrink-seconds``) and the target of issue 20 where it set one. Arguments after ``--`` go
to ``kvcache-check``.

``--together`` checks every implementation in one ``kvcache-check`` instead, as a user checking
many at once would (its lanes spread over them): by default ``STAND_IN``, 22 implementations of
which 20 are wrong, the stand-in for issue 20's held-back set.

Run: ``python -m benchmarks.harness`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from properties.known_bad.lineage import LINEAGE
from properties.known_bad.mutants import MUTANTS

SEED_FALLBACK, SEED_KERNEL = LINEAGE
TARGETS: dict[str, float | None] = {  # seconds to a verdict, on a 2-core machine
    "kvcache:kv_cache_update_jax": None,
    "kvcache:kv_cache_update": 45.0,  # the interpreted kernel, both tiers
    SEED_FALLBACK: 60.0,  # every finding reported and shrunk
    SEED_KERNEL: None,
}

# Issue 20's many-implementation run: 22 implementations, 20 of them wrong (the original
# module's two and the last 18 mutants: kernels, call patterns, dtypes and bounds among them).
CORRECT = ("kvcache:kv_cache_update_jax", "kvcache:kv_cache_update")
STAND_IN = (*CORRECT, *LINEAGE, *MUTANTS[-18:])
TOGETHER_TARGET = 900.0  # seconds, for STAND_IN


@dataclass(frozen=True)
class Run:
    """One ``kvcache-check`` of one implementation."""

    seconds: float
    cpu_seconds: float
    exit_status: int
    statuses: Counter[str]
    failing: int  # implementations with a check that did not pass
    shrinks_stopped: int

    @property
    def verdicts(self) -> str:
        counted = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items()))
        return f"{counted}; {self.failing} not passing" if self.failing else counted


def _children_cpu() -> float:
    """User and system seconds of every child process waited for so far (their own waited-for
    children included: ``kvcache-check``'s checking processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_once(implementations: list[str], profile: str, extra: list[str]) -> Run:
    """``kvcache-check`` on ``implementations`` in a fresh process with an empty compilation
    cache, timed from start to exit."""
    with tempfile.TemporaryDirectory(prefix="kvcache-harness-") as directory:
        report = Path(directory) / "results.json"
        command = [sys.executable, "-m", "properties.cli", "--profile", profile]
        command += [arg for spec in implementations for arg in ("--impl", spec)]
        command += ["--quiet", "--json", str(report), *extra]
        environment = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(Path(directory) / "jax")}
        cpu, start = _children_cpu(), time.perf_counter()
        finished = subprocess.run(command, env=environment, capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
        if finished.returncode not in (0, 1):
            raise RuntimeError(
                f"{' '.join(command)} exited {finished.returncode}:\n{finished.stderr}"
            )
        checked = json.loads(report.read_text())["implementations"]
    results = [result for one in checked for result in one["results"]]
    return Run(
        seconds,
        cpu,
        finished.returncode,
        Counter(r["status"] for r in results),
        sum(any(r["status"] != "passed" for r in one["results"]) for one in checked),
        sum(r.get("shrink_stopped", False) for r in results),
    )


def row(name: str, runs: list[Run], target: float | None) -> tuple[str, ...]:
    """The table's row for ``runs`` of ``name`` (an implementation, or several together),
    against ``target`` seconds if there is one."""
    median = statistics.median(r.seconds for r in runs)
    met = "" if target is None else ("yes" if median <= target else "no")
    return (
        name,
        str(len(runs)),
        f"{median:.1f}",
        f"{min(r.seconds for r in runs):.1f}-{max(r.seconds for r in runs):.1f}",
        f"{statistics.median(r.cpu_seconds for r in runs):.1f}",
        runs[-1].verdicts,
        str(runs[-1].shrinks_stopped),
        "" if target is None else f"<= {target:g}",
        met,
    )


HEADER = (
    "implementation",
    "runs",
    "median s",
    "range s",
    "cpu s",
    "verdicts",
    "shrinks stopped",
    "target s",
    "met",
)


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip()
        for r in [HEADER, *rows]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per implementation (median)")
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default ci)")
    parser.add_argument(
        "--impl",
        action="append",
        metavar="MODULE:ATTR",
        help=f"implementations (repeatable; default: {', '.join(TARGETS)})",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="every implementation in one kvcache-check (default: STAND_IN, 22 of them)",
    )
    parser.add_argument("extra", nargs="*", help="after --: more kvcache-check options")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    extra = " ".join(args.extra)
    print(
        f"kvcache-check --profile {args.profile} {extra}".rstrip() + f"; {args.runs} run(s), cold"
    )
    judged = args.profile == "ci" and not args.extra  # the targets are for a whole ci run
    if args.together:
        specs = args.impl or list(STAND_IN)
        checks = [(f"{len(specs)} implementations together", specs)]
        targets = {checks[0][0]: TOGETHER_TARGET if specs == list(STAND_IN) else None}
    else:
        checks = [(spec, [spec]) for spec in args.impl or TARGETS]
        targets = TARGETS
    rows = []
    for name, specs in checks:
        runs = [check_once(specs, args.profile, args.extra) for _ in range(args.runs)]
        rows.append(row(name, runs, targets.get(name) if judged else None))
        done = ", ".join(f"{r.seconds:.1f} s ({r.cpu_seconds:.1f} s cpu)" for r in runs)
        print(f"  {name}: {done}", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
