"""Drawing cost: milliseconds per update the harness's strategy draws, per tier, under the
``ci`` profile's generate phase (no shrinking, nothing called).

Two figures a tier: the layout alone (``updates(..., zeros=True)``: shapes, slice tables and
counts, the tokens and cache left zero) and the whole update (contents drawn too). The median
of ``--runs`` runs of ``--examples`` updates each.

Run: ``python -m benchmarks.drawing`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import statistics
import time

from hypothesis import Phase, given, settings

from oracle.contract import Tier
from properties._src.drawing.strategies import updates
from properties._src.running.profiles import PROFILES


def seconds_per_update(tier: Tier, examples: int, *, zeros: bool) -> float:
    """Seconds per update over one derandomised generate-only search of ``examples``."""

    @settings(PROFILES["ci"], max_examples=examples, phases=[Phase.generate])
    @given(updates(tier, zeros=zeros))
    def draw(update) -> None:
        pass

    started = time.perf_counter()
    draw()
    return (time.perf_counter() - started) / examples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="updates a run (default 300)")
    parser.add_argument("--runs", type=int, default=3, help="runs a figure (default 3)")
    args = parser.parse_args(argv)
    print(f"{'tier':8}  {'layout ms':>10}  {'update ms':>10}   (median of {args.runs} runs)")
    for tier in (Tier.GENERAL, Tier.SERVING):
        layout, whole = (
            statistics.median(
                seconds_per_update(tier, args.examples, zeros=zeros) for _ in range(args.runs)
            )
            * 1000
            for zeros in (True, False)
        )
        print(f"{tier.name.lower():8}  {layout:10.2f}  {whole:10.2f}")


if __name__ == "__main__":
    main()
