"""Coverage: which classes of shapes a run's examples reached, as Hypothesis events, in the
results (and their JSON form) and in the report."""

from __future__ import annotations

from hypothesis import settings
from hypothesis.internal.observability import with_observability_callback

from properties import cli
from properties._src.calling.implementations import load
from properties._src.cases.catalog import CASES
from properties._src.cases.run_config import RunConfig
from properties._src.cases.serving_loop import SERVING_LOOP
from properties._src.domain.buckets import BUCKETS
from properties._src.domain.classes import DIMENSIONS, every_label, labels_of
from properties._src.reporting.results import CaseResult, CheckResult
from properties._src.running.runner import run

TWO = settings(max_examples=2, derandomize=True, database=None, deadline=None)


def test_a_run_counts_each_class_its_examples_reached_and_records_them_as_events():
    case = next(c for c in CASES if c.id == "matches-oracle-general")
    shapes = BUCKETS[:2]
    observations: list = []
    with with_observability_callback(observations.append):
        outcome = run(
            load("kvcache:kv_cache_update_jax"),
            case,
            RunConfig(settings=TWO, explicit_examples=False, buckets=shapes),
        )
    assert outcome.status == "passed" and outcome.examples == 2  # one a shape
    assert list(outcome.coverage) == list(every_label())
    reached = {label for b in shapes for label in labels_of(b)}
    assert {label for label, n in outcome.coverage.items() if n} == reached
    for dimension in DIMENSIONS:  # each example is in one class of each dimension
        classes = [dimension.label(c) for c in dimension.classes]
        assert sum(outcome.coverage[label] for label in classes) == outcome.examples
    events = {name for o in observations if o.type == "test_case" for name in o.features}
    assert reached <= events


def test_a_sequences_steps_count_once_for_their_example():
    """The serving loop makes several calls an example on its one cache (its token and column
    counts change between calls): each class counts an example at most once."""
    calls: list = []
    outcome = run(
        load("kvcache:kv_cache_update_jax"),
        SERVING_LOOP,
        RunConfig(
            settings=settings(TWO, max_examples=4),
            explicit_examples=False,
            buckets=BUCKETS[:1],
            before_call=calls.append,
        ),
    )
    assert outcome.status == "passed" and len(calls) > outcome.examples > 0
    assert max(outcome.coverage.values()) == outcome.examples
    cache = [label for label in labels_of(BUCKETS[0]) if label.startswith(("page ", "cache "))]
    assert {outcome.coverage[label] for label in cache} == {outcome.examples}


def _result(coverage: dict[str, int], status: str = "passed") -> CaseResult:
    return CaseResult("matches-oracle", "general", status, 3, 1.0, None, coverage=coverage)


def test_coverage_crosses_the_json_form_and_older_reports_read_as_none():
    result = _result({label: 2 for label in every_label()})
    assert CaseResult.from_dict(result.to_dict()) == result
    older = {k: v for k, v in result.to_dict().items() if k != "coverage"}
    assert CaseResult.from_dict(older).coverage == {}


def test_the_report_names_a_class_no_example_reached_and_prints_the_table(capsys):
    never = every_label()[0]
    reached = {label: 0 if label == never else 1 for label in every_label()}
    results = [CheckResult("impl", (_result(reached), _result({})))]
    cli._report(results, quiet=True, coverage=True)
    out = capsys.readouterr().out
    assert f"impl: passed with gaps: no example reached 1 class of shapes: {never}\n" in out
    table = out.split("class of shapes", 1)[1].splitlines()
    assert f"{never}  " in next(line for line in table if line.startswith(never))
    assert all(line.rstrip().endswith(("1", "-", "impl")) for line in table if line.strip())
