"""``kvcache-check`` survives what it checks: a segfault, a hang, a raise and a slow but correct
implementation, each alone and beside a correct one; the JSON and JUnit XML it writes; Ctrl-C."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import deque
from pathlib import Path

import jax
import numpy as np
import pytest

from kvcache import kv_cache_update_jax
from properties._src.cases.catalog import units
from properties._src.domain.buckets import BUCKETS
from properties._src.reporting.results import CaseResult, CheckResult
from properties._src.reporting.results_io import Results, json_text, junit_xml_text
from properties._src.running.api import STATUSES, cases_on
from properties._src.supervising.supervisor import _Lane, _next_spec, supervise
from properties.cli import EXIT_STATUSES, main
from properties.known_bad import MISBEHAVING

SEGFAULTING, HANGING, RAISING, SLOW = MISBEHAVING
CORRECT = "kvcache:kv_cache_update_jax"
QUICK = ["--tier", "serving", "--max-examples", "2", "--profile", "ci"]
ROOT = Path(__file__).parents[2]

# What each misbehaving implementation gets, and what its counterexample must say.
EXPECTED = {
    SEGFAULTING: ("crashed", ["killed by signal SIGSEGV", "in segfaulting", "reproduce:"]),
    HANGING: ("timed-out", ["s timeout (--timeout)", "in hanging", "reproduce:"]),
    RAISING: ("failed", ["raised RuntimeError: this implementation always raises"]),
    SLOW: ("passed", []),
}
# Alone, the hanging one gets a short timeout: its first example hangs at once, after the
# harness's own first transfer to the device (which took over 1 s once, cold on a loaded
# machine). Beside a correct implementation, whose first example compiles, a longer one.
SHORT_TIMEOUT, TIMEOUT = "5", "10"


def run_cli(tmp_path: Path, *arguments: str) -> tuple[int, dict, ET.Element]:
    """The exit status, the JSON report and the JUnit XML of one run."""
    report, junit = tmp_path / "results.json", tmp_path / "results.xml"
    status = main([*arguments, *QUICK, "--json", str(report), "--junit-xml", str(junit)])
    return status, json.loads(report.read_text()), ET.parse(junit).getroot()


def assert_got(result: CaseResult, expected: tuple[str, list[str]]) -> None:
    status, phrases = expected
    assert result.status == status, result.counterexample
    assert (result.counterexample is None) == (status == "passed")
    for phrase in phrases:
        assert phrase in (result.counterexample or ""), result.counterexample


@pytest.mark.parametrize("spec", MISBEHAVING)
def test_each_misbehaving_implementation_alone_gets_a_report(spec, tmp_path, capsys):
    """Every serving case in supervised children, restarted after each crash or hang (a hang
    waits out its timeout): half a minute or more each, run once (marked process)."""
    expected = EXPECTED[spec]
    timeout = SHORT_TIMEOUT if spec == HANGING else TIMEOUT
    status, report, junit = run_cli(tmp_path, "--impl", spec, "--timeout", timeout)
    assert status == (0 if expected[0] == "passed" else 1)
    [implementation] = report["implementations"]
    assert implementation["name"] == spec
    assert [r["property"] for r in implementation["results"]] == [
        c.name for c in cases_on("serving")
    ], "every case is reported, the ones after a crash or a hang included"
    for result in implementation["results"]:
        assert_got(CaseResult.from_dict(result), expected)
    out = capsys.readouterr().out
    assert f"{spec}: {implementation['results'][-1]['property']} (serving) {expected[0]} in" in out
    assert junit.get("tests") == str(len(cases_on("serving")))


@pytest.mark.parametrize("spec", MISBEHAVING)
def test_each_misbehaving_implementation_leaves_a_correct_one_beside_it_unaffected(spec):
    """Two children starting JAX, and for the hanging one its whole 10 s timeout: up to 20 s."""
    expected = EXPECTED[spec]
    results: dict[str, list[CaseResult]] = {}

    class Recorder:
        def case_started(self, name, case): ...

        def example_started(self, name, case, examples): ...

        def case_finished(self, name, result):
            results.setdefault(name, []).append(result)

    first = cases_on("serving")[:1]  # one case: the restarts are the test above's
    options = {"profile": "ci", "max_examples": 2}
    supervise([spec, CORRECT], first, Recorder(), options=options, timeout=float(TIMEOUT), jobs=2)
    [result] = results[spec]
    assert_got(result, expected)
    assert [r.status for r in results[CORRECT]] == ["passed"]


def test_a_crash_beside_a_correct_implementation_loses_nothing(tmp_path):
    """Both implementations over every serving case in children, the crashing one restarted
    after each crash, and its snippet run in a fresh interpreter: half a minute or more."""
    status, report, junit = run_cli(
        tmp_path, "--impl", SEGFAULTING, "--impl", CORRECT, "--jobs", "2", "--timeout", TIMEOUT
    )
    assert status == 1
    crashed, correct = report["implementations"]
    assert {r["status"] for r in crashed["results"]} == {"crashed"}
    assert {r["status"] for r in correct["results"]} == {"passed"}
    assert [s.get("name") for s in junit] == [SEGFAULTING, CORRECT]
    serving = len(cases_on("serving"))
    assert (junit.get("tests"), junit.get("errors"), junit.get("failures")) == (
        str(2 * serving),
        str(serving),
        "0",
    )
    errors = junit.findall("./testsuite/testcase/error")
    assert [e.get("type") for e in errors] == ["crashed"] * serving
    assert all("SIGSEGV" in e.text for e in errors)
    # The counterexample is the update that crashes: its snippet, run alone, segfaults.
    script = crashed["results"][0]["counterexample"].split("reproduce:\n", 1)[1]
    rerun = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert rerun.returncode == -signal.SIGSEGV


def _segfault_from_two(count) -> None:
    if int(np.asarray(count).reshape(-1)[0]) >= 2:
        ctypes.string_at(0)


def crashes_from_two_columns(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Correct on updates with fewer than two real columns; segfaults on the others, when the
    count reaches the host at run time (eagerly or under jax.jit alike)."""
    jax.debug.callback(_segfault_from_two, total_update_slices)
    return kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


def test_the_crash_counterexample_is_the_update_in_flight_not_an_earlier_one():
    results: list[CaseResult] = []

    class Recorder:
        def case_started(self, name, case): ...

        def example_started(self, name, case, examples): ...

        def case_finished(self, name, result):
            results.append(result)

    spec = f"{__name__}:{crashes_from_two_columns.__name__}"
    # Three examples a pool shape: each shape's first is its simplest (a column at most).
    options = {"profile": "ci", "max_examples": 3 * len(BUCKETS)}
    supervise([spec], cases_on("general")[:1], Recorder(), options=options, timeout=60)
    [result] = results
    assert result.status == "crashed" and result.counterexample, result.counterexample
    columns = int(re.search(r"; n = (\d+) of", result.counterexample)[1])
    assert columns >= 2, result.counterexample
    assert result.examples >= 2, "updates with fewer columns ran (and passed) before it"


def first_line(process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    assert line, process.communicate()
    return line


def test_ctrl_c_stops_cleanly_with_the_table_and_json_of_what_finished(tmp_path):
    report = tmp_path / "results.json"
    command = [sys.executable, "-m", "properties.cli", *QUICK, "--json", str(report)]
    command += ["--impl", CORRECT, "--impl", HANGING, "--timeout", "600", "--jobs", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        header = first_line(process)
        assert header.startswith("constraints: none; compare: bits"), header
        line = first_line(process)
        assert line.startswith(f"{CORRECT}: "), line
        during = json.loads(report.read_text())  # already written, while the run goes on
        children = _children(process.pid)
        assert children, "the implementations are checked in child processes"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    [correct] = during["implementations"]
    assert correct["name"] == CORRECT and len(correct["results"]) >= 1
    after = json.loads(report.read_text())
    assert [i["name"] for i in after["implementations"]] == [CORRECT]
    assert after["implementations"][0]["results"][: len(correct["results"])] == correct["results"]
    finished = len(after["implementations"][0]["results"])
    assert re.search(r"^implementation +property", out, re.MULTILINE), "the table is printed"
    assert f"interrupted after {finished} of {2 * len(cases_on('serving'))} checks" in out
    assert HANGING not in out
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "children were killed"


def _children(pid: int) -> list[int]:
    """The processes ``pid`` spawned to check implementations (not multiprocessing's resource
    tracker, which leaves on its own once every process holding its pipe has ended)."""
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (process / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"spawn_main" in command:
            found.append(int(process.name))
    return found


def test_every_status_and_exit_status_is_documented(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    for status in STATUSES:
        assert f"  {status}  " in help_text and f"`{status}`" in readme, status
    for code in EXIT_STATUSES:
        assert f"  {code}  " in help_text and f"`{code}`" in readme, code


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(timeout):
    with pytest.raises(SystemExit) as exit_:
        main(["--impl", CORRECT, "--timeout", timeout])
    assert exit_.value.code == 2


def a_result(status: str, counterexample: str | None, diagnosis=()) -> CaseResult:
    return CaseResult("matches-oracle", "serving", status, 1, 0.5, counterexample, diagnosis)


def test_the_files_are_rewritten_whole_as_each_result_arrives(tmp_path):
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    results = Results(["a:b", "c:d"], [(report, json_text), (junit, junit_xml_text)])
    assert json.loads(report.read_text()) == {"implementations": [], "constraints": []}
    assert ET.parse(junit).getroot().get("tests") == "0"
    results.add("c:d", a_result("passed", None))
    assert [i["name"] for i in json.loads(report.read_text())["implementations"]] == ["c:d"]
    results.add("a:b", a_result("crashed", "killed\x00 by \x1b signal"))
    names = [i["name"] for i in json.loads(report.read_text())["implementations"]]
    assert names == ["a:b", "c:d"], "in the order named, not the order finished"
    [error] = ET.parse(junit).getroot().iter("error")
    assert error.get("type") == "crashed" and error.text == "killed\ufffd by \ufffd signal"
    assert sorted(os.listdir(tmp_path)) == ["r.json", "r.xml"], "no temporary file is left"


def test_a_result_crosses_the_process_boundary_as_itself_and_the_json_keeps_its_fields(tmp_path):
    result = a_result("failed", "why", ("values", "untouched-row"))
    assert CaseResult.from_dict(result.to_dict()) == result
    check = CheckResult("a:b", (result, a_result("passed", None)))
    assert CheckResult.from_dict(json.loads(json.dumps(check.to_dict()))) == check
    report = tmp_path / "r.json"
    results = Results(["a:b"], [(report, json_text)])
    results.add("a:b", result)
    [implementation] = json.loads(report.read_text())["implementations"]
    assert list(implementation["results"][0].items()) == [
        ("property", "matches-oracle"),
        ("tier", "serving"),
        ("status", "failed"),
        ("examples", 1),
        ("seconds", 0.5),
        ("counterexample", "why"),
        ("diagnosis", ["values", "untouched-row"]),
        ("shrink_stopped", False),
        ("coverage", {}),
    ]


def test_results_are_kept_in_the_cases_order_whatever_order_they_arrive_in(tmp_path):
    report = tmp_path / "r.json"
    order = [
        ("matches-oracle", "general"),
        ("matches-oracle", "serving"),
        ("serving-loop", "serving"),
    ]
    results = Results(["a:b"], [(report, json_text)], order)
    for prop, tier in reversed(order):
        results.add("a:b", CaseResult(prop, tier, "passed", 1, 0.5, None))
    [implementation] = json.loads(report.read_text())["implementations"]
    assert [(r["property"], r["tier"]) for r in implementation["results"]] == order


def test_one_implementations_units_run_in_lanes_at_once():
    """Two units of one implementation (a tier's properties; shapes changing between calls)
    with two lanes: each runs in a child of its own, at the same time. Each child starts JAX
    and the slow implementation sleeps on every call: 25 to 50 s on a 2-core machine."""
    spans: dict[str, list[float]] = {}

    class Recorder:
        def case_started(self, name, case):
            spans.setdefault(case.id, [time.monotonic()])

        def example_started(self, name, case, examples): ...

        def case_finished(self, name, result):
            spans[f"{result.property}-{result.tier}"].append(time.monotonic())

    cases = [
        c
        for c in cases_on("serving")
        if c.name in ("matches-oracle", "shapes-change-between-calls")
    ]
    options = {"profile": "ci", "max_examples": 2}
    supervise([SLOW], cases, Recorder(), options=options, timeout=float(TIMEOUT), jobs=2)
    (start_a, end_a), (start_b, end_b) = spans.values()
    assert start_a < end_b and start_b < end_a, spans


def test_a_new_lane_takes_an_implementation_no_lane_is_on_else_the_one_with_most_left():
    lane = _Lane("a:a", units(cases_on("serving")))
    assert _next_spec({"a:a": deque([1, 2]), "b:b": deque([0])}, [lane]) == "b:b"
    assert _next_spec({"a:a": deque([1]), "b:b": deque([0, 1])}, [lane]) == "b:b"
    busy = [lane, _Lane("b:b", lane.units)]
    assert _next_spec({"a:a": deque([1]), "b:b": deque([0, 1])}, busy) == "b:b"
    assert _next_spec({"a:a": deque(), "b:b": deque()}, []) is None
