"""Harness throughput: examples per second for each implementation under a Hypothesis profile.

Runs every (property, tier) case of ``properties/test_properties.py`` in turn, as one pytest
worker does, counting the examples Hypothesis generates. The first case pays for compiling
each shape bucket (cold); the rest find the compiled programs cached (warm).
``--profile-top N`` adds a cProfile summary per implementation, to see where the time goes.

Run: ``python -m benchmarks.harness`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import time

import jax
from hypothesis import settings

from properties import profiles  # noqa: F401  (registers the profiles)
from properties.harness import property_test
from properties.implementations import Implementation, builtin
from properties.test_properties import CASES


def run_cases(implementation: Implementation, profile: str) -> list[tuple[int, float]]:
    """``(examples, seconds)`` for each case, in order."""
    results = []
    for prop, tier in CASES:
        seen = []
        test = property_test(
            prop, tier, implementation, observe=seen.append, settings_=settings.get_profile(profile)
        )
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
    print(f"{'implementation':28} {'cold: first case':>28} {'warm: the other cases':>28}")
    for implementation in builtin():
        profiler = cProfile.Profile() if args.profile_top else None
        with profiler or contextlib.nullcontext():
            results = run_cases(implementation, args.profile)
        print(f"{implementation.name:28} {rate(results[:1]):>28} {rate(results[1:]):>28}")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_top)


if __name__ == "__main__":
    main()
