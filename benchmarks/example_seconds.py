"""How long one example takes, cold and warm, as ``kvcache-check --timeout`` measures it: the
figure its default must stay far above.

Each implementation runs every case in a supervised child, as ``kvcache-check`` runs it, with
a fresh compilation cache (so the first example of each shape bucket compiles; the very first
also starts JAX's backend). An example's
time is what the supervisor's timeout sees: from the update being sent until the next update
or the case's result (the call, the property's check, and drawing the next example).

Run: ``python -m benchmarks.example_seconds`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from properties._src.calling.implementations import BUILTIN_SPECS
from properties._src.cases.catalog import Case
from properties._src.reporting.results import CaseResult
from properties._src.running.api import cases_on
from properties._src.supervising.supervisor import DEFAULT_TIMEOUT, supervise


class ExampleClock:
    """A supervisor listener keeping each example's seconds, per implementation (timed per
    unit in flight: lanes may check two units of one implementation at once)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self._since: dict[tuple[str, str], float] = {}

    def _tick(self, name: str, case_id: str) -> None:
        now = time.monotonic()
        if (name, case_id) in self._since:
            self.seconds.setdefault(name, []).append(now - self._since.pop((name, case_id)))
        self._since[(name, case_id)] = now

    def case_started(self, name: str, case: Case) -> None:
        self._since.pop((name, case.id), None)

    def example_started(self, name: str, case: Case, examples: int) -> None:
        self._tick(name, case.id)  # a unit's examples come under its first case

    def case_finished(self, name: str, result: CaseResult) -> None:
        case_id = f"{result.property}-{result.tier}"
        self._tick(name, case_id)
        self._since.pop((name, case_id), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", action="append", help="MODULE:ATTR (default: the built-in ones)")
    parser.add_argument("--profile", default="dev")
    parser.add_argument("--jobs", type=int, default=1, help="children at once (default: 1)")
    args = parser.parse_args()
    specs = args.impl or list(BUILTIN_SPECS)
    clock = ExampleClock()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache  # the children start cold
        supervise(
            specs,
            cases_on(None),
            clock,
            options={"profile": args.profile},
            timeout=DEFAULT_TIMEOUT,
            jobs=args.jobs,
        )
    print(f"profile {args.profile}, {args.jobs} child(ren) at once; seconds per example")
    print(f"{'implementation':<32} {'examples':>8} {'first':>8} {'median':>8} {'slowest':>8}")
    for name in specs:
        seconds = clock.seconds[name]
        first, median, slowest = seconds[0], statistics.median(seconds), max(seconds)
        print(f"{name:<32} {len(seconds):>8} {first:>8.2f} {median:>8.3f} {slowest:>8.2f}")


if __name__ == "__main__":
    main()
