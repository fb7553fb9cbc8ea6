"""Every snippet a report prints replays its finding: run for a few known-bad targets (one case
each, a small budget), each snippet shows the same finding as the report it came from, and a
finding seen with the TPU interpreter's race detector off is replayed with it off."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from oracle.contract import Update
from properties._src.calling import implementations
from properties._src.calling.implementations import EAGER, load
from properties._src.cases.catalog import CASES
from properties._src.judging.checks import MATCHES_ORACLE
from properties._src.judging.diagnosis import INTERPRETER_FAULT
from properties._src.judging.judge import judged_call
from properties._src.judging.steps import Step, describe_error
from properties._src.reporting.report import render
from properties._src.running.api import check

REPRODUCE = "reproduce:\n"


def replayed(report: str) -> BaseException:
    """What the snippet at the end of ``report`` raises when run (it must raise)."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the finding says which
        exec(report.split(REPRODUCE, 1)[1], {})
    return raised.value


def shows_the_same_finding(report: str, error: BaseException) -> bool:
    """Whether ``error``, raised by the report's snippet, is the report's finding: the
    property's own words for a wrong result, the implementation's raise for a raise."""
    said = str(error) if isinstance(error, AssertionError) else describe_error(error)
    return said in report.split(REPRODUCE, 1)[0]


@pytest.mark.parametrize(
    ("target", "case_id", "code"),
    [
        ("mutants:count_minus_one", "matches-oracle-general", "values"),
        ("misbehaving:raising", "untouched-rows-unchanged-general", "raised"),
        ("lineage:seed_kernel", "matches-oracle-serving", "padding-copied"),
    ],
)
def test_each_printed_snippet_shows_its_finding(target, case_id, code):
    case = next(c for c in CASES if c.id == case_id)
    result = check(f"properties.known_bad.{target}", cases=[case], max_examples=4, profile="ci")
    [printed] = result.not_passed
    assert code in printed.diagnosis, printed.diagnosis
    assert printed.counterexample.count(REPRODUCE) == 1
    error = replayed(printed.counterexample)
    assert shows_the_same_finding(printed.counterexample, error), (error, printed.counterexample)


def test_a_finding_seen_with_race_detection_off_is_replayed_with_it_off(monkeypatch):
    """JAX's race detector asserts on the seed kernel's zero-byte first wait (the harness's
    mend taken away, as for any fault it does not mend); re-run without it, the kernel copies
    a padding column. The snippet replays the copy, not the assert."""
    monkeypatch.setattr(implementations, "mended", contextlib.nullcontext)
    slice_indices = np.array([[0, 4, 8, 0], [0, 1, 3, 0], [0, 2, 2, 0]], np.int32)
    update = Update(  # column 0 copies nothing; column 2 is padding the kernel copies
        np.arange(1, 9, dtype=np.float32).reshape(8, 1, 1),
        slice_indices,
        -np.arange(1, 17, dtype=np.float32).reshape(16, 1, 1),
        np.array([2], np.int32),
        4,
    )
    spec = "properties.known_bad.lineage:seed_kernel"
    _, failure = judged_call(load(spec), MATCHES_ORACLE, Step(update, EAGER))
    assert failure is not None
    assert failure.diagnosis.codes == ("padding-copied", INTERPRETER_FAULT), failure.diagnosis
    assert not failure.detect_races
    report = render(spec, failure)
    assert "detect_races=False" in report
    error = replayed(report)
    assert isinstance(error, AssertionError) and shows_the_same_finding(report, error), error
