"""Harness throughput: examples per second and compile seconds per implementation, for every
case in ``CASES`` under a Hypothesis profile.

Runs the cases in turn, as one ``kvcache-check`` worker does, with JAX's in-memory caches
cleared before each implementation and a persistent compilation cache that starts empty (one
directory for the run: JAX opens it once per process), so each implementation pays for the
programs it is the first to compile. Compile seconds are what JAX reports through
``jax.monitoring`` while the cases run (tracing, lowering and XLA compilation). Then the
first case runs again with the in-memory caches cleared, loading the programs from the
persistent cache, as a new worker or a later run would. ``--per-case`` prints a row per case;
``--profile-top N`` adds a cProfile summary per implementation.

Run: ``python -m benchmarks.throughput`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import tempfile
import time
from collections import Counter

import jax
from jax import monitoring

from properties._src.calling import compilation_cache
from properties._src.calling.implementations import Implementation, builtin
from properties._src.cases.catalog import CASES
from properties._src.cases.run_config import RunConfig
from properties._src.running.profiles import PROFILES

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_seconds: Counter[str] = Counter()


def _listen(event: str, duration: float, **_) -> None:
    _seconds[event] += duration


monitoring.register_event_duration_secs_listener(_listen)


def compile_seconds() -> float:
    """Seconds spent tracing, lowering and compiling since the process started."""
    return sum(_seconds[event] for event in COMPILE_EVENTS)


def run_cases(implementation: Implementation, profile: str, cases=CASES) -> list[tuple]:
    """``(case id, examples, seconds, compile seconds)`` for each case, in order."""
    results = []
    for case in cases:
        seen: list = []
        test = case.build(
            implementation, RunConfig(observe=seen.append, settings=PROFILES[profile])
        )
        compiled, start = compile_seconds(), time.perf_counter()
        test()
        results.append(
            (case.id, len(seen), time.perf_counter() - start, compile_seconds() - compiled)
        )
    return results


def rate(results: list[tuple]) -> str:
    examples, seconds, compiling = (sum(r[i] for r in results) for i in (1, 2, 3))
    return (
        f"{examples:5d} {seconds:8.2f} {examples / seconds:9.1f} "
        f"{compiling:9.2f} {100 * compiling / seconds:5.0f}%"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default ci)")
    parser.add_argument("--per-case", action="store_true", help="print a row per case")
    parser.add_argument("--profile-top", type=int, default=0, help="print the N costliest calls")
    args = parser.parse_args(argv)
    print(
        f"jax {jax.__version__} on {jax.default_backend()}; profile {args.profile};"
        f" {len(CASES)} cases per implementation"
    )
    header = f"{'examples':>8} {'seconds':>8} {'examples/s':>10} {'compile s':>9} share"
    print(f"{'implementation':44} {header}   first case from disk: examples, s, /s")
    directory = tempfile.TemporaryDirectory()
    compilation_cache.enable(directory.name, replace=True)
    for implementation in builtin():
        jax.clear_caches()
        profiler = cProfile.Profile() if args.profile_top else None
        with profiler or contextlib.nullcontext():
            results = run_cases(implementation, args.profile)
        jax.clear_caches()
        [(_, examples, seconds, _)] = run_cases(implementation, args.profile, CASES[:1])
        print(
            f"{implementation.name:44} {rate(results)}   "
            f"{examples:4d} {seconds:6.2f} {examples / seconds:6.1f}"
        )
        if args.per_case:
            for result in results:
                print(f"  {result[0]:42} {rate([result])}")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_top)
    directory.cleanup()


if __name__ == "__main__":
    main()
