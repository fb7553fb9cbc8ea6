"""Time budgets: a check that spends ``check_seconds`` is ``incomplete`` (never ``passed``), a
shrink that spends ``shrink_seconds`` reports the smallest example so far and says so, and no
profile runs Hypothesis's explain phase."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp
import pytest
from hypothesis import Phase

from benchmarks import compiling, drawing, harness
from properties import check, cli
from properties._src.cases.catalog import CASES
from properties._src.reporting.results import STATUSES, CaseResult, CheckResult
from properties._src.reporting.results_io import junit_xml_text
from properties._src.running.profiles import PROFILES
from properties.cli import MEANINGS, _case_line, _check_options, _parser

CORRECT = "kvcache:kv_cache_update_jax"
SEED_FALLBACK = "properties.known_bad.lineage:seed_fallback"


def case(case_id: str):
    return next(c for c in CASES if c.id == case_id)


@pytest.mark.parametrize(
    "case_id",
    ["matches-oracle-serving", "serving-loop-serving", "updates-commute-and-combine-general"],
)
def test_a_check_that_spends_its_budget_is_incomplete_with_what_it_reached(case_id):
    [result] = check(
        CORRECT, cases=(case(case_id),), profile="ci", max_examples=10_000, check_seconds=1.0
    ).results
    assert result.status == "incomplete"
    assert result.examples >= 1
    first, *shapes = result.counterexample.splitlines()
    assert first.startswith("the search stopped at its 1 s budget (--check-seconds) after ")
    assert f"after {result.examples} examples on " in first
    assert shapes and shapes[0].startswith("  page_size ")


def slow_no_op(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """Writes nothing, 50 ms a call however it is called: each shrink step is dear."""
    jax.debug.callback(lambda: time.sleep(0.05))
    return jnp.asarray(kv_cache_pages)


def test_a_shrink_that_spends_its_budget_reports_its_smallest_example_so_far():
    searched = (case("shapes-change-between-calls-general"),)  # no explicit examples
    [stopped] = check(slow_no_op, cases=searched, profile="ci", shrink_seconds=0.1).results
    assert (stopped.status, stopped.shrink_stopped) == ("failed", True)
    assert "shrinking stopped at its 0.1 s budget (--shrink-seconds)" in stopped.counterexample
    assert "differ from the oracle" in stopped.counterexample.splitlines()[0]
    [shrunk] = check(SEED_FALLBACK, cases=(case("matches-oracle-serving"),), profile="ci").results
    assert (shrunk.status, shrunk.shrink_stopped) == ("failed", False)
    assert "shrinking stopped" not in shrunk.counterexample


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), float("inf")])
def test_a_budget_that_is_not_a_positive_number_is_refused(seconds):
    with pytest.raises(ValueError, match="check_seconds"):
        check(CORRECT, cases=CASES[:1], check_seconds=seconds)


def test_the_command_passes_its_budgets_on_and_refuses_bad_ones(capsys):
    parser = _parser()
    args = parser.parse_args(["--check-seconds", "30", "--shrink-seconds", "5"])
    assert _check_options(args)["check_seconds"] == 30.0
    assert _check_options(args)["shrink_seconds"] == 5.0
    assert _check_options(parser.parse_args([]))["check_seconds"] is None
    for bad in ("0", "-1", "inf"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--shrink-seconds", bad])


def test_incomplete_is_a_status_documented_in_help_and_a_junit_failure():
    assert "incomplete" in STATUSES and set(MEANINGS) == set(STATUSES)
    result = CaseResult("matches-oracle", "general", "incomplete", 7, 3.0, "the search stopped")
    root = ET.fromstring(junit_xml_text([CheckResult("impl", (result,))]))
    assert root.get("failures") == "1" and root.get("errors") == "0"
    assert root.find(".//failure").get("type") == "incomplete"
    assert _case_line("impl", result).endswith("incomplete in 3.00 s: the search stopped")


def test_shrink_stopped_is_a_json_field_read_back_false_when_absent():
    result = CaseResult("matches-oracle", "general", "failed", 3, 1.0, "text", (), True)
    data = result.to_dict()
    assert list(data)[-2:] == ["shrink_stopped", "coverage"] and data["shrink_stopped"] is True
    assert CaseResult.from_dict(data) == result
    del data["shrink_stopped"]
    assert CaseResult.from_dict(data).shrink_stopped is False


def test_no_profile_runs_the_explain_phase():
    for name, profile in PROFILES.items():
        assert Phase.explain not in profile.phases, name
        assert Phase.shrink in profile.phases, name


@pytest.mark.process
def test_the_harness_benchmark_prints_a_row_per_implementation(capsys):
    """About 15 s: ``kvcache-check`` in a child (JAX starting, compiling) on one tier with one
    example per shape. Checks the table's shape and the verdicts read from the JSON, not times."""
    harness.main(["--impl", SEED_FALLBACK, "--", "--tier", "serving", "--max-examples", "1"])
    *_, header, line = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["implementation", "runs", "median"]
    assert line.startswith(f"{SEED_FALLBACK}  1  ") and "failed" in line


@pytest.mark.process
def test_the_harness_benchmark_together_counts_every_implementations_verdicts(capsys):
    """One ``kvcache-check`` over two implementations, in a child as above: 15 to 25 s, each
    implementation compiling its serving shapes cold in a lane of its own."""
    options = ["--", "--tier", "serving", "--max-examples", "1"]
    harness.main(["--together", "--impl", SEED_FALLBACK, "--impl", CORRECT, *options])
    *_, line = capsys.readouterr().out.splitlines()
    assert line.startswith("2 implementations together  1  ")
    assert "failed" in line and "passed" in line and "; 1 not passing" in line


def test_the_drawing_benchmark_prints_a_row_per_tier(capsys):
    drawing.main(["--examples", "3", "--runs", "1"])
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["tier", "layout", "ms"]
    assert [row.split()[0] for row in rows] == ["general", "serving"]
    assert all(float(figure) > 0 for row in rows for figure in row.split()[1:])


def test_the_compiling_benchmark_prints_a_row_per_implementation(capsys):
    compiling.main(["--impl", "kvcache:kv_cache_update_jax", "--shapes", "2"])
    title, header, *rows = capsys.readouterr().out.splitlines()
    assert title.startswith("2 pool shapes")
    assert header.split()[:3] == ["implementation", "lower", "med"]
    assert [row.split()[0] for row in rows] == ["kvcache:kv_cache_update_jax"]
    assert all(float(figure) > 0 for figure in rows[0].split()[1:])


def test_the_command_exits_1_and_counts_incomplete_checks(monkeypatch, capsys):
    incomplete = CaseResult("matches-oracle", "general", "incomplete", 7, 3.0, "the search stopped")

    def supervise(specs, cases, listener, **options):
        assert options["options"]["check_seconds"] == 3.0
        for spec in specs:
            listener.case_finished(spec, incomplete)

    monkeypatch.setattr(cli, "supervise", supervise)
    assert cli.main(["--impl", CORRECT, "--check-seconds", "3"]) == 1
    out = capsys.readouterr().out
    assert f"{CORRECT}: matches-oracle (general) incomplete in 3.00 s: the search stopped" in out
    assert "1 of 1 checks did not pass (1 incomplete: their search spent --check-seconds)" in out
