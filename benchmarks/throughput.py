"""Harness throughput: examples per second for each implementation under a Hypothesis profile.

Runs every case (property, tier) in turn, as one pytest worker does, counting the examples Hypothesis generates. The first case pays for compiling
each shape bucket; the rest find the compiled programs in memory (warm). The first case then
runs again with JAX's in-memory caches cleared, loading the programs from the persistent
compilation cache (a fresh directory for the run), as a new worker or a later run would.
``--profile-top N`` adds a cProfile summary per implementation, to see where the time goes.

Run: ``python -m benchmarks.throughput`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import tempfile
import time

import jax

from properties._src import compilation_cache
from properties._src.cases import CASES
from properties._src.implementations import Implementation, builtin
from properties._src.profiles import PROFILES


def run_cases(implementation: Implementation, profile: str, cases=CASES) -> list[tuple[int, float]]:
    """``(examples, seconds)`` for each case, in order."""
    results = []
    for case in cases:
        seen = []
        test = case.build(implementation, observe=seen.append, settings_=PROFILES[profile])
        start = time.perf_counter()
        test()
        results.append((len(seen), time.perf_counter() - start))
    return results


def rate(results: list[tuple[int, float]]) -> str:
    examples, seconds = (sum(column) for column in zip(*results, strict=True))
    return f"{examples:4d} in {seconds:6.2f} s = {examples / seconds:6.1f}/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default ci)")
    parser.add_argument("--profile-top", type=int, default=0, help="print the N costliest calls")
    args = parser.parse_args(argv)
    print(
        f"jax {jax.__version__} on {jax.default_backend()}; profile {args.profile};"
        f" {len(CASES)} (property, tier) cases per implementation"
    )
    header = ("first case: compiling", "first case: from disk", "the other cases: warm")
    print(f"{'implementation':28}" + "".join(f" {title:>28}" for title in header))
    with tempfile.TemporaryDirectory() as directory:
        compilation_cache.enable(directory, replace=True)
        for implementation in builtin():
            profiler = cProfile.Profile() if args.profile_top else None
            with profiler or contextlib.nullcontext():
                results = run_cases(implementation, args.profile)
            jax.clear_caches()
            from_disk = run_cases(implementation, args.profile, cases=CASES[:1])
            rates = (rate(results[:1]), rate(from_disk), rate(results[1:]))
            print(f"{implementation.name:28}" + "".join(f" {r:>28}" for r in rates))
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_top)


if __name__ == "__main__":
    main()
