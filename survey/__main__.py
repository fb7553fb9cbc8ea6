"""``python -m survey``: download each peer, load it with its patches, check it with
``kvcache-check`` under its constraints, and print a table.

Options other than the survey's own are passed to ``kvcache-check`` as they are (for
instance ``--compare values`` or ``--tier serving``). Exit status: 0 when every peer was
checked (whatever the verdicts), 1 when one could not be, 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jaxlib

from survey import fetching, patching, peers, running, table, targets


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m survey",
        description="Check the peers' paged KV-cache updates with kvcache-check.",
        epilog="Other options go to kvcache-check unchanged.",
    )
    parser.add_argument(
        "--peer",
        action="append",
        choices=[p.key for p in peers.PEERS],
        help="a peer to check (repeatable; default: all)",
    )
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default: ci)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args, extra = _parser().parse_known_args(argv)
    chosen = [peers.by_key(key) for key in args.peer] if args.peer else list(peers.PEERS)
    print(f"JAX {jax.__version__}, jaxlib {jaxlib.__version__}, Python {sys.version.split()[0]}")
    reports = fetching.cache_dir() / "reports"
    runs, unchecked = [], 0
    for peer in chosen:
        try:
            targets.patched_text(peer)  # download and patch here, so a failure says so plainly
        except (fetching.FetchError, patching.PatchError) as error:
            print(f"{peer.key}: not checked: {error}", file=sys.stderr)
            unchecked += 1
            continue
        print(f"checking {peer.key} ...", flush=True)
        run = running.run(peer, reports, args.profile, extra)
        unchecked += run.results is None
        runs.append(run)
    print()
    print(table.render(runs))
    print(f"\nfull reports: {reports}/<peer>.txt and .json")
    return 1 if unchecked else 0


if __name__ == "__main__":
    sys.exit(main())
