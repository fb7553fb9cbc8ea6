"""Where ``kvcache-check``'s results go besides the terminal: the JSON report and JUnit XML.

Each file is rewritten whole as every result arrives (a temporary file renamed over the old
one), so it is complete and valid at every moment: after a crash of the harness itself, a
Ctrl-C, or a CI job killed for time, it holds every result that finished.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from properties._src.reporting.results import CaseResult, CheckResult

# JUnit has two kinds of not passing: a failed assertion, and anything else. An incomplete
# check is a failure (of type "incomplete"), not "skipped": tools count skipped tests as
# green, and a check that ran out of time has not shown the implementation correct; the exit
# status says so too.
JUNIT_FAILURES = {
    "failed": "failure",
    "incomplete": "failure",
    "error": "error",
    "crashed": "error",
    "timed-out": "error",
}

# Characters XML 1.0 cannot hold, even escaped (an implementation's error message may have them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def json_text(
    implementations: list[CheckResult],
    constraints: Iterable[str] = (),
    platform: dict | None = None,
) -> str:
    """The ``--json`` report: ``{"implementations": [{"name", "results": [...]}, ...],
    "constraints": [...], "platform": {...}}`` (the shape constraints in force; and, where
    given, ``comparison.platform()``: the jaxlib version, the backend, and the dtypes whose
    NaN payloads its scatter quiets, whose NaNs ``bits`` therefore compares by value)."""
    report: dict = {
        "implementations": [i.to_dict() for i in implementations],
        "constraints": list(constraints),
    }
    if platform is not None:
        report["platform"] = platform
    return json.dumps(report, indent=2) + "\n"


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _count(results: Sequence[CaseResult], kind: str) -> str:
    return str(sum(JUNIT_FAILURES.get(r.status) == kind for r in results))


def _totals(element: ET.Element, results: Sequence[CaseResult]) -> None:
    element.set("tests", str(len(results)))
    element.set("failures", _count(results, "failure"))
    element.set("errors", _count(results, "error"))
    element.set("time", f"{sum(r.seconds for r in results):.3f}")


def junit_xml_text(implementations: list[CheckResult]) -> str:
    """The ``--junit-xml`` report: a test suite per implementation, a test case per property
    and tier; ``failed`` and ``incomplete`` are failures, ``error``, ``crashed`` and ``timed-out``
    are errors, each of its status's type, with the counterexample as its text."""
    root = ET.Element("testsuites", name="kvcache-check")
    _totals(root, [r for i in implementations for r in i.results])
    for implementation in implementations:
        suite = ET.SubElement(root, "testsuite", name=implementation.name)
        _totals(suite, implementation.results)
        for r in implementation.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=implementation.name,
                name=f"{r.property} ({r.tier})",
                time=f"{r.seconds:.3f}",
            )
            if kind := JUNIT_FAILURES.get(r.status):
                text = _xml_safe(r.counterexample or "")
                element = ET.SubElement(case, kind, type=r.status, message=text.partition("\n")[0])
                element.text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never a part."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


Format = Callable[[list[CheckResult]], str]


class Results:
    """Every result so far, per implementation in the order named and within one in ``order``
    (``(property, tier)`` pairs; results arrive from parallel lanes in any order), each output
    file rewritten as one arrives."""

    def __init__(
        self,
        names: Iterable[str],
        outputs: Iterable[tuple[Path, Format]] = (),
        order: Sequence[tuple[str, str]] = (),
    ):
        self._results: dict[str, list[CaseResult]] = {name: [] for name in names}
        self._outputs = list(outputs)
        self._rank = {key: index for index, key in enumerate(order)}
        self.write()

    def add(self, name: str, result: CaseResult) -> None:
        results = self._results[name]
        results.append(result)
        results.sort(key=lambda r: self._rank.get((r.property, r.tier), len(self._rank)))
        self.write()

    def __len__(self) -> int:
        """How many results have arrived (what the files hold once ``add`` returns)."""
        return sum(len(r) for r in self._results.values())

    def implementations(self) -> list[CheckResult]:
        """A ``CheckResult`` for each implementation with a result, in the order named."""
        return [CheckResult(n, tuple(r)) for n, r in self._results.items() if r]

    def write(self) -> None:
        """Rewrite the files with every result kept (``add`` does; again after a Ctrl-C that
        may have cut ``add`` short between keeping a result and writing it)."""
        implementations = self.implementations()
        for path, format_ in self._outputs:
            replace(path, format_(implementations))
