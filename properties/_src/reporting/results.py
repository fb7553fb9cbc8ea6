"""The verdicts ``check`` returns and ``kvcache-check`` reports: a ``CaseResult`` per case, a
``CheckResult`` per implementation.

They cross the boundary of a supervised child as plain data (``to_dict``) and are read back as
themselves (``from_dict``), so the command line, the JSON and JUnit writers and the headings
all read typed results. ``to_dict`` is the ``--json`` report's shape, field for field, in order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# A case's verdict. ``check`` gives "passed", "failed", "error" and "incomplete" (its search
# spent ``check_seconds``); ``kvcache-check``, which runs each implementation in a child
# process it watches, adds "crashed" (the process died) and "timed-out" (one example ran past
# ``--timeout``).
STATUSES = ("passed", "failed", "error", "incomplete", "crashed", "timed-out")


@dataclass(frozen=True)
class CaseResult:
    """The verdict of one property on one tier; ``counterexample`` is the rendered failure
    (or the error, or for ``incomplete`` what the search tried) for any status but ``passed``;
    ``diagnosis`` names what kind of failure it is (``diagnosis.CODES``; empty when passed);
    ``shrink_stopped`` says the counterexample's shrink stopped at its budget
    (``shrink_seconds``), so it is the smallest found by then; ``coverage`` how many examples
    reached each class of shapes (``judging.coverage``; empty when nothing was counted, as
    for a crash)."""

    property: str
    tier: str
    status: str
    examples: int
    seconds: float
    counterexample: str | None
    diagnosis: tuple[str, ...] = ()
    shrink_stopped: bool = False
    coverage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Its fields in order, the diagnosis as a list: one result of the JSON report."""
        data = asdict(self)
        data["diagnosis"] = list(self.diagnosis)
        return data

    as_dict = to_dict  # the name it had before, kept for callers

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        """The result ``to_dict`` gave (``diagnosis``, ``shrink_stopped`` and ``coverage`` may
        be left out: none, false, none)."""
        diagnosis, coverage = tuple(data.get("diagnosis", ())), dict(data.get("coverage", {}))
        return cls(**{**data, "diagnosis": diagnosis, "coverage": coverage})

    def heading(self, name: str) -> str:
        """The line above its counterexample: implementation, property, tier, status."""
        return f"=== {name}: {self.property} ({self.tier}) {self.status} ==="


@dataclass(frozen=True)
class CheckResult:
    """Every case checked for one implementation."""

    name: str
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.status == "passed" for r in self.results)

    @property
    def not_passed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if r.status != "passed")

    def to_dict(self) -> dict[str, Any]:
        """What ``kvcache-check --json`` writes for this implementation."""
        return {"name": self.name, "results": [r.to_dict() for r in self.results]}

    as_dict = to_dict  # the name it had before, kept for callers

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """The result ``to_dict`` gave."""
        return cls(data["name"], tuple(CaseResult.from_dict(r) for r in data["results"]))

    def failure_text(self) -> str:
        """Each case that did not pass, with its counterexample, for a person."""
        return "\n\n".join(f"{r.heading(self.name)}\n{r.counterexample}" for r in self.not_passed)
