"""``kvcache-check``: every property, on every tier, against any implementation.

Without ``--impl`` it checks the project's own implementations. Each implementation is
checked in one worker process (as many as there are cores), so its compiled shapes stay warm
across its properties. Exit status: 0 all passed, 1 something failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from properties._src import compilation_cache, profiles
from properties._src.api import TIERS, check
from properties._src.buckets import BUCKETS
from properties._src.comparison import COMPARISONS
from properties._src.constraints import fitting, parse_all
from properties._src.implementations import BUILTIN, ImplementationError, load_all


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvcache-check",
        description="Check paged KV-cache update implementations against the properties.",
    )
    parser.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help=f"an implementation to check (repeatable; {BUILTIN!r}: the project's own, the default)",
    )
    parser.add_argument(
        "--profile",
        choices=tuple(profiles.PROFILES),
        default=profiles.default_profile(),
        help="Hypothesis profile (default: %(default)s)",
    )
    parser.add_argument("--max-examples", type=_positive, help="override the profile's budget")
    parser.add_argument("--tier", choices=tuple(TIERS), help="one tier only (default: both)")
    parser.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="DIM%K",
        help="draw only shapes whose DIM (heads, head_dim, page_size, columns, tokens, pages) "
        "is a multiple of K (repeatable)",
    )
    parser.add_argument(
        "--compare",
        choices=COMPARISONS,
        default="bits",
        help="bits: every bit must match (default); values: any NaN equals any NaN, "
        "+0.0 equals -0.0, everything else exact",
    )
    parser.add_argument(
        "--seed", type=int, help="the seed of a non-derandomised profile (a failure names it)"
    )
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the results here")
    parser.add_argument(
        "--jobs", type=_positive, default=os.cpu_count() or 1, help="worker processes"
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def check_implementation(
    spec: str,
    profile: str,
    max_examples: int | None,
    tier,
    constraints: tuple[str, ...],
    compare: str = "bits",
    seed: int | None = None,
) -> dict:
    """One implementation's results as JSON-ready data (run in a worker process)."""
    # A kernel that fails in the TPU interpreter logs the traceback; the report says it shorter.
    logging.getLogger("jax._src.callback").setLevel(logging.CRITICAL)
    compilation_cache.enable()  # in each worker process: JAX's settings are per process
    return check(
        spec,
        tier=tier,
        profile=profile,
        max_examples=max_examples,
        constraints=constraints,
        compare=compare,
        seed=seed,
    ).as_dict()


def _check_all(
    specs: list[str], profile: str, max_examples, tier, constraints, jobs: int, compare, seed
) -> list[dict]:
    arguments = [(spec, profile, max_examples, tier, constraints, compare, seed) for spec in specs]
    if jobs == 1 or len(specs) == 1:
        return [check_implementation(*a) for a in arguments]
    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with ProcessPoolExecutor(min(jobs, len(specs)), mp_context=context) as pool:
        futures = [pool.submit(check_implementation, *a) for a in arguments]
        return [future.result() for future in futures]


def _table(results: list[dict]) -> str:
    header = ("implementation", "property", "tier", "examples", "verdict", "seconds")
    lines = [
        (
            impl["name"],
            r["property"],
            r["tier"],
            str(r["examples"]),
            r["status"],
            f"{r['seconds']:.2f}",
        )
        for impl in results
        for r in impl["results"]
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    numeric = {3, 5}
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *lines]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print the table and every counterexample; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        specs = [i.name for i in load_all(args.impl or [BUILTIN])]
    except ImplementationError as error:
        parser.error(str(error))
    if args.json and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: no directory {args.json.parent}")
    try:
        constraints = tuple(str(c) for c in parse_all(args.constraint))
        fitting(BUCKETS, parse_all(constraints))
    except ValueError as error:
        parser.error(str(error))
    results = _check_all(
        specs,
        args.profile,
        args.max_examples,
        args.tier,
        constraints,
        args.jobs,
        args.compare,
        args.seed,
    )
    print(f"constraints: {', '.join(constraints) or 'none'}; compare: {args.compare}")
    print(_table(results))
    bad = [(i["name"], r) for i in results for r in i["results"] if r["status"] != "passed"]
    for name, r in bad:
        print(f"\n=== {name}: {r['property']} ({r['tier']}) {r['status']} ===")
        print(r["counterexample"])
    total = sum(len(i["results"]) for i in results)
    verdict = f"{len(bad)} of {total} checks did not pass" if bad else f"all {total} checks passed"
    print(f"\n{verdict} (profile {args.profile})")
    if args.json:
        report = {"implementations": results, "constraints": list(constraints)}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
