"""``kvcache-check``: every property, on every tier, against any implementation.

Without ``--impl`` it checks the project's own implementations. The cases are checked in
child processes the command watches (``properties._src.supervising.supervisor``), ``--jobs``
at once, one implementation's cases spread over them, so a crash or a hang becomes a verdict
instead of the end of the run; the table and the files keep the cases' order. First a header: the constraints, the comparison in force and what the
platform makes it compare by value (``comparison.platform``); a line per case as it finishes;
then a table and every counterexample.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import TextIO

from properties._src.calling.implementations import BUILTIN, ImplementationError, load_all
from properties._src.calling.placement import MeshShape
from properties._src.cases.catalog import Case, all_cases
from properties._src.cases.run_config import DEFAULT_SHRINK_SECONDS
from properties._src.domain.comparisons import COMPARE_HELP, COMPARISONS
from properties._src.domain.constraint_syntax import CONSTRAINT_HELP, CONSTRAINT_METAVAR
from properties._src.domain.constraints import in_force
from properties._src.judging import comparison
from properties._src.reporting.coverage_report import coverage_table, gap_lines
from properties._src.reporting.results import CaseResult, CheckResult
from properties._src.reporting.results_io import Results, json_text, junit_xml_text
from properties._src.running import profiles
from properties._src.running.api import STATUSES, TIERS, all_constraints, cases_on
from properties._src.running.listing import listing
from properties._src.supervising.supervisor import DEFAULT_TIMEOUT, supervise

MEANINGS = {
    "passed": "every example tried satisfied the property",
    "failed": "a counterexample: a wrong result, a raise on valid input, or a race",
    "error": "JAX's TPU interpreter faulted in its own code and nothing else was wrong "
    "(diagnosis interpreter-fault), or Hypothesis stopped without a counterexample",
    "incomplete": "the check's search spent its --check-seconds before trying all its examples "
    "and found no counterexample in those it tried; the report says how many examples and "
    "which shapes it reached (not a pass)",
    "crashed": "the process checking it died (a signal such as SIGSEGV, or an exit); the "
    "counterexample is the update it was running",
    "timed-out": "one example ran past --timeout; the counterexample is the update that hung",
}
EXIT_STATUSES = {
    0: "every check passed",
    1: "a check did not pass (incomplete ones included)",
    2: "a usage error (an implementation that cannot be loaded, a bad option)",
    130: "interrupted (Ctrl-C): the checks that finished are reported and written",
}
INTERRUPTED = 130
REDRAW_SECONDS = 0.1  # the live count of examples, at most this often


def _epilog() -> str:
    """The statuses and exit statuses, for ``--help``."""
    width = max(map(len, MEANINGS))

    def entry(term: object, meaning: str) -> str:
        indent = " " * (width + 4)
        return textwrap.fill(
            meaning, 79, initial_indent=f"  {term!s:<{width}}  ", subsequent_indent=indent
        )

    return "\n".join(
        [
            "statuses:",
            *(entry(status, MEANINGS[status]) for status in STATUSES),
            "exit status:",
            *(entry(code, meaning) for code, meaning in EXIT_STATUSES.items()),
        ]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvcache-check",
        description="Check paged KV-cache update implementations against the properties.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument(
        "--max-examples",
        type=_positive,
        help="override the profile's budget (per case; split over the pool's shapes)",
    )
    parser.add_argument("--tier", choices=tuple(TIERS), help="one tier only (default: both)")
    parser.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar=CONSTRAINT_METAVAR,
        help=CONSTRAINT_HELP,
    )
    parser.add_argument(
        "--compare",
        choices=COMPARISONS,
        default="bits",
        help=COMPARE_HELP,
    )
    parser.add_argument(
        "--seed", type=int, help="the seed of a non-derandomised profile (a failure names it)"
    )
    parser.add_argument(
        "--mesh",
        metavar="pages=P,heads=H",
        help="place every update on a P x H device mesh (cache pages over 'pages', heads over "
        "'heads'; on CPU, virtual devices) and check that the result keeps its sharding",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="per example: a child whose example runs longer is killed, the check timed-out "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--check-seconds",
        type=_seconds,
        metavar="SECONDS",
        help="per check (a property on a tier; a tier's properties, judged on the same calls, "
        "share one search and its budget): a search that runs longer stops, the checks it had "
        "not settled incomplete (default: no limit)",
    )
    parser.add_argument(
        "--shrink-seconds",
        type=_seconds,
        default=DEFAULT_SHRINK_SECONDS,
        metavar="SECONDS",
        help="per shrink: a shrink that runs longer stops and reports the smallest failing "
        "example so far, saying so (default: %(default)g)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        type=Path,
        help="write the results here, rewritten as each arrives (valid at every moment)",
    )
    parser.add_argument(
        "--junit-xml", metavar="FILE", type=Path, help="write the results here as JUnit XML"
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=os.cpu_count() or 1,
        help="lanes: child processes checking at once, one implementation's cases spread over "
        "them (a tier's properties together, every other case alone; default: %(default)s)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the cases, properties, tiers, profiles, pool shapes, dtypes, calling modes, "
        "statuses and diagnoses, and exit without checking anything",
    )
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="print, under the report, how many examples reached each class of shapes "
        "(dimensions and relations, docs/shapes-and-dtypes.md)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress and no counterexamples: the table and the verdict alone",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _check_options(args: argparse.Namespace) -> dict:
    """``check``'s keyword arguments from the options (the tier chooses the cases instead)."""
    return {
        "profile": args.profile,
        "max_examples": args.max_examples,
        "constraints": tuple(str(c) for c in in_force(args.constraint)),
        "compare": args.compare,
        "seed": args.seed,
        "mesh": args.mesh,
        "check_seconds": args.check_seconds,
        "shrink_seconds": args.shrink_seconds,
    }


def _outputs(args: argparse.Namespace, constraints: tuple[str, ...], platform: dict) -> list:
    with_header = functools.partial(json_text, constraints=constraints, platform=platform)
    return [
        (path, format_)
        for path, format_ in ((args.json, with_header), (args.junit_xml, junit_xml_text))
        if path is not None
    ]


def _case_line(name: str, result: CaseResult) -> str:
    """A case as it finishes: implementation, property, tier, verdict, seconds; for an
    incomplete one, what its search reached; for a shrink stopped early, that."""
    line = f"{name}: {result.property} ({result.tier}) {result.status} in {result.seconds:.2f} s"
    if result.status == "incomplete" and result.counterexample:
        line += f": {result.counterexample.splitlines()[0]}"
    return line + (" (shrink stopped at --shrink-seconds)" if result.shrink_stopped else "")


class Progress:
    """The supervisor's listener: keeps each result, prints a line per case as it finishes
    and, on a terminal, a live count of the examples tried."""

    def __init__(self, results: Results, total: int, stream: TextIO, *, quiet: bool):
        self.results, self.total, self.stream = results, total, stream
        self.quiet = quiet
        self.live = not quiet and stream.isatty()
        self.tried = 0
        self.drawn_at = 0.0

    @property
    def finished(self) -> int:
        """Checks done: the results kept, so a Ctrl-C between keeping one and printing its
        line still counts it as the files do."""
        return len(self.results)

    def case_started(self, name: str, case: Case) -> None:
        self._draw(f"{name}: {case.id}", force=True)

    def example_started(self, name: str, case: Case, examples: int) -> None:
        self.tried += 1
        self._draw(f"{name}: {case.id}, example {examples}")

    def case_finished(self, name: str, result: CaseResult) -> None:
        self.results.add(name, result)
        if not self.quiet:
            self.clear()
            print(_case_line(name, result), file=self.stream, flush=True)
            self._draw("", force=True)

    def _draw(self, doing: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self.drawn_at < REDRAW_SECONDS):
            return
        self.drawn_at = now
        status = f"{self.finished} of {self.total} checks done, {self.tried} examples tried"
        self.stream.write(f"\r\x1b[K{status}{'; ' + doing if doing else ''}")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the live count (before anything else is printed)."""
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _table(results: list[CheckResult]) -> str:
    header = ("implementation", "property", "tier", "examples", "verdict", "seconds")
    lines = [
        (impl.name, r.property, r.tier, str(r.examples), r.status, f"{r.seconds:.2f}")
        for impl in results
        for r in impl.results
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


def _report(
    implementations: list[CheckResult], *, quiet: bool, coverage: bool = False
) -> list[CaseResult]:
    """Print the table, the classes of shapes no example reached, each counterexample and
    (with ``coverage``) the coverage table; return the results that did not pass."""
    print(_table(implementations))
    for line in gap_lines(implementations):
        print(line)
    bad = [(i.name, r) for i in implementations for r in i.not_passed]
    for name, r in [] if quiet else bad:
        print(f"\n{r.heading(name)}")
        print(r.counterexample)
    if coverage:
        print(f"\n{coverage_table(implementations)}")
    return [r for _, r in bad]


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print the table and every counterexample; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        try:
            mesh = MeshShape.parse(args.mesh) if args.mesh else None
            print(listing(all_constraints(args.constraint, mesh)))
        except ValueError as error:
            parser.error(str(error))
        return 0
    try:
        specs = list(dict.fromkeys(i.name for i in load_all(args.impl or [BUILTIN])))
    except ImplementationError as error:
        parser.error(str(error))
    for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml)):
        if path and not path.parent.is_dir():
            parser.error(f"{option} {path}: no directory {path.parent}")
    try:
        options = _check_options(args)
        mesh = MeshShape.parse(args.mesh) if args.mesh else None
        all_constraints(options["constraints"], mesh)  # together they leave some shape?
        if mesh:
            mesh.build()  # enough devices? (asks for virtual CPU devices before JAX starts)
    except ValueError as error:
        parser.error(str(error))
    cases = cases_on(args.tier, all_cases(mesh is not None))
    platform = comparison.platform()  # after the mesh asked for its devices: JAX starts here
    order = [(case.name, case.tier.name.lower()) for case in cases]  # the table's, the files'
    results = Results(specs, _outputs(args, options["constraints"], platform), order)
    print(
        f"constraints: {', '.join(options['constraints']) or 'none'}; compare: {args.compare}; "
        f"{comparison.platform_phrase(platform, args.compare)}"
    )
    progress = Progress(results, len(specs) * len(cases), sys.stdout, quiet=args.quiet)
    interrupted = False
    try:
        supervise(specs, cases, progress, options=options, timeout=args.timeout, jobs=args.jobs)
    except KeyboardInterrupt:
        interrupted = True
        results.write()  # the Ctrl-C may have come between keeping a result and writing it
    progress.clear()
    if not args.quiet:
        print()
    bad = _report(results.implementations(), quiet=args.quiet, coverage=args.coverage)
    done = progress.finished
    verdict = f"{len(bad)} of {done} checks did not pass" if bad else f"all {done} checks passed"
    if incomplete := sum(r.status == "incomplete" for r in bad):
        verdict += f" ({incomplete} incomplete: their search spent --check-seconds)"
    if interrupted:
        verdict = f"interrupted after {done} of {progress.total} checks: {verdict}"
    print(f"\n{verdict} (profile {args.profile}{f', mesh {mesh}' if mesh else ''})")
    if interrupted:
        return INTERRUPTED
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
