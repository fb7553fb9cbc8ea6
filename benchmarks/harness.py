"""Harness throughput: examples per second for each implementation under a Hypothesis profile.

Runs the ``matches-oracle`` property on the general tier (the widest strategy), counting the
examples Hypothesis generates, including compilation of each shape bucket on first sight.
``--profile-top N`` adds a cProfile summary, to see where the time goes.

Run: ``python -m benchmarks.harness`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import jax
from hypothesis import settings

from oracle.contract import Tier
from properties import profiles  # noqa: F401  (registers the profiles)
from properties.checks import PROPERTIES
from properties.harness import property_test
from properties.implementations import builtin

MATCHES_ORACLE = next(p for p in PROPERTIES if p.name == "matches-oracle")


def examples_per_second(implementation, profile: str) -> tuple[int, float]:
    """``(examples, seconds)`` for one run of the property under ``profile``."""
    seen = []
    test = property_test(
        MATCHES_ORACLE,
        Tier.GENERAL,
        implementation,
        observe=seen.append,
        settings_=settings.get_profile(profile),
    )
    start = time.perf_counter()
    test()
    return len(seen), time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default ci)")
    parser.add_argument("--profile-top", type=int, default=0, help="print the N costliest calls")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.default_backend()}; profile {args.profile}")
    for implementation in builtin():
        profiler = cProfile.Profile() if args.profile_top else None
        if profiler:
            profiler.enable()
        examples, seconds = examples_per_second(implementation, args.profile)
        if profiler:
            profiler.disable()
        print(
            f"{implementation.name:32} {examples:4d} examples {seconds:7.2f} s"
            f" {examples / seconds:8.1f} examples/s"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile_top)


if __name__ == "__main__":
    main()
