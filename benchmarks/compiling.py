"""Compiling cost: seconds to lower and to compile an implementation's program for each shape of
the pool, which a cold check pays once per shape and calling mode (a kernel in the TPU
interpreter in every process: JAX keeps no program with callbacks on disk).

Each shape is lowered and compiled as the ``jit-donated`` calling mode runs it
(``implementations.jitted``), in the TPU interpreter where the implementation launches a Pallas
TPU kernel. The shapes are the pool's that every implementation is checked on as they are
(``AFFORDABLE_WHEN_INTERPRETED``: at most ``INTERPRETER_MAX_COLUMNS`` columns), each lowered
afresh and, run as a command, compiled without JAX's persistent cache. A row per
implementation: the median and the total seconds of each, over the shapes.

Run: ``python -m benchmarks.compiling`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from properties._src.calling.implementations import interpreting, jitted, load
from properties._src.domain.buckets import AFFORDABLE_WHEN_INTERPRETED, Bucket

DEFAULT = ("kvcache:kv_cache_update", "kvcache:kv_cache_update_jax")


def arguments(bucket: Bucket) -> tuple[jax.ShapeDtypeStruct, ...]:
    """The abstract arrays of an update of ``bucket``, in the update's argument order."""
    row = (bucket.heads, bucket.head_dim)
    return (
        jax.ShapeDtypeStruct((bucket.num_tokens, *row), bucket.dtype),
        jax.ShapeDtypeStruct((3, bucket.num_slices), bucket.table_dtype),
        jax.ShapeDtypeStruct((bucket.cache_rows, *row), bucket.dtype),
        jax.ShapeDtypeStruct(bucket.count_shape, bucket.count_dtype),
    )


def seconds(spec: str, buckets: tuple[Bucket, ...]) -> list[tuple[float, float]]:
    """(lowering, compiling) seconds of ``spec``'s jit-donated program for each bucket, each
    lowered afresh (JAX's in-memory caches cleared first)."""
    implementation = load(spec)
    jax.clear_caches()
    timed = []
    with interpreting():
        for bucket in buckets:
            started = time.perf_counter()
            lowered = jitted(implementation).lower(*arguments(bucket), page_size=bucket.page_size)
            lowered_at = time.perf_counter()
            lowered.compile()
            timed.append((lowered_at - started, time.perf_counter() - lowered_at))
    return timed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--impl",
        action="append",
        metavar="MODULE:ATTR",
        help=f"implementations (repeatable; default: {', '.join(DEFAULT)})",
    )
    parser.add_argument("--shapes", type=int, help="the first N shapes only (default: all of them)")
    args = parser.parse_args(argv)
    buckets = AFFORDABLE_WHEN_INTERPRETED[: args.shapes]
    print(f"{len(buckets)} pool shapes, jit-donated, seconds")
    print(
        f"{'implementation':30}  {'lower med':>9}  {'compile med':>11}  {'lower':>7}  {'compile':>7}"
    )
    for spec in args.impl or DEFAULT:
        lowering, compiling = zip(*seconds(spec, buckets), strict=True)
        print(
            f"{spec:30}  {statistics.median(lowering):9.3f}  {statistics.median(compiling):11.3f}"
            f"  {sum(lowering):7.2f}  {sum(compiling):7.2f}"
        )


if __name__ == "__main__":
    jax.config.update("jax_enable_compilation_cache", False)  # nothing read from disk
    main()
