"""``kvcache-check``: exit statuses, the JSON it writes, and the counterexamples it renders."""

from __future__ import annotations

import dataclasses
import json
import re

import jax
import jaxlib
import numpy as np
import pytest

from properties import DIAGNOSES, TIERS, cli
from properties import STATUSES as ALL_STATUSES
from properties._src.calling.implementations import CALL_MODES, load
from properties._src.cases.catalog import CASES, all_cases, bits
from properties._src.cases.property_case import examples_per_shape
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS, DTYPES
from properties._src.domain.classes import every_label
from properties._src.drawing.contents import special_values
from properties._src.judging import comparison
from properties._src.judging.steps import Failure
from properties._src.reporting.report import render, snippet
from properties._src.running.api import cases_on
from properties._src.running.profiles import PROFILES
from properties._src.running.runner import run
from properties.cli import main

QUICK = ["--profile", "ci", "--max-examples", "3"]
STATUSES = {"passed", "failed", "error"}


def run_cli(tmp_path, *arguments) -> tuple[int, dict]:
    out = tmp_path / "results.json"
    status = main([*arguments, *QUICK, "--json", str(out)])
    return status, json.loads(out.read_text())


def failed(results: dict, prop: str) -> dict:
    return next(r for r in results["results"] if r["property"] == prop and r["status"] == "failed")


def test_json_has_one_entry_per_implementation_in_order_and_the_documented_fields(tmp_path):
    """Two implementations over every serving case in child processes (the general tier's
    cases report the same fields), the seed's fallback failing and shrinking in each: half a
    minute or more, run once (marked process)."""
    specs = ["properties.known_bad.lineage:seed_fallback", "kvcache:kv_cache_update_jax"]
    serving = ["--tier", "serving", "--jobs", "2"]
    status, report = run_cli(tmp_path, "--impl", specs[0], "--impl", specs[1], *serving)
    assert status == 1
    assert list(report) == ["implementations", "constraints", "platform"]
    assert report["constraints"] == []
    assert report["platform"] == {
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "nan_payloads_quieted": [d for d in DTYPES if comparison.quiets_nan_payloads(d)],
    }
    assert [i["name"] for i in report["implementations"]] == specs
    for implementation in report["implementations"]:
        assert list(implementation) == ["name", "results"]
        assert len(implementation["results"]) == len(cases_on("serving"))
        for r in implementation["results"]:
            assert list(r) == [
                "property",
                "tier",
                "status",
                "examples",
                "seconds",
                "counterexample",
                "diagnosis",
                "shrink_stopped",
                "coverage",
            ]
            assert r["tier"] == "serving" and r["status"] in STATUSES
            assert isinstance(r["examples"], int) and r["examples"] >= 1
            assert isinstance(r["seconds"], float)
            assert (r["counterexample"] is None) == (r["status"] == "passed")
            assert (r["diagnosis"] == []) == (r["status"] == "passed")
            assert r["shrink_stopped"] is False  # within the default --shrink-seconds
            assert list(r["coverage"]) == list(every_label())  # examples reaching each class
            assert max(r["coverage"].values()) <= r["examples"]


def test_seed_fallback_is_rejected_with_a_slice_in_the_last_page_at_an_offset(tmp_path, capsys):
    status, report = run_cli(
        tmp_path, "--impl", "properties.known_bad.lineage:seed_fallback", "--tier", "serving"
    )
    assert status == 1
    text = failed(report["implementations"][0], "matches-oracle")["counterexample"]
    pages = int(re.search(r"(\d+) pages", text).group(1))
    slices = [tuple(map(int, m)) for m in re.findall(r"page (\d+) offset (\d+)", text)]
    assert any(page == pages - 1 and offset > 0 for page, offset in slices), text
    assert re.search(r"page +\d+ rows +\d+\+ \|.*[A-Z!]", text), "differing rows are marked"
    assert "rows that differ:" in text and "expected" in text
    assert text in capsys.readouterr().out
    with pytest.raises(AssertionError, match="differ from the oracle"):
        exec(text.split("reproduce:\n", 1)[1], {})


def test_a_result_of_the_wrong_dtype_is_reported_as_such():
    # On 8-bit float caches the promotion raises instead (JAX has no implicit promotion path
    # for them), which a search can find first: the wrong dtype is looked for on the others.
    promotable = tuple(b for b in BUCKETS if not b.dtype.startswith("float8"))
    case = next(c for c in CASES if c.id == "shape-and-dtype-preserved-general")
    mutant = load("properties.known_bad.mutants:result_promoted")
    outcome = run(mutant, case, RunConfig(settings=PROFILES["ci"], buckets=promotable))
    assert outcome.status == "failed"
    text = render(mutant.name, outcome.failure, diagnosis=outcome.diagnosis)
    mode = r"(called eagerly|under jax.jit with a donated cache)"
    assert re.match(mode + r": result is float32\[.*\]; the cache is \w+\[", text), text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no.such.module:update", "cannot import"),
        ("kvcache:no_such_function", "has no attribute"),
        ("kvcache", "expected MODULE:ATTR"),
        ("properties._src.reporting.report:snippet", "must accept (new_kv_tokens"),
    ],
)
def test_an_implementation_that_cannot_be_loaded_is_a_usage_error(spec, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--impl", spec])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_the_mesh_reaches_every_worker_process_and_adds_its_property(tmp_path):
    """One implementation's units spread over both lanes (``--jobs 2``), so each lane's
    child process checks some of them on the mesh: two children starting JAX on 8 devices and
    compiling every serving shape for the mesh, 20 to 35 s."""
    mesh = ["--mesh", "pages=2,heads=4", "--tier", "serving", "--jobs", "2"]
    status, report = run_cli(tmp_path, "--impl", "kvcache:kv_cache_update_jax", *mesh)
    assert status == 0
    for implementation in report["implementations"]:
        names = [r["property"] for r in implementation["results"]]
        serving = cases_on("serving", all_cases(on_mesh=True))
        assert names.count("sharding-preserved") == 1 and len(names) == len(serving), names


@pytest.mark.parametrize(
    "arguments",
    [
        ["--max-examples", "0"],
        ["--tier", "prefill"],
        ["--json", "/no/such/dir/x.json"],
        ["--mesh", "pages=2"],
        ["--mesh", "pages=2,heads=4", "--constraint", "head_dim%10000000"],  # no shape fits
    ],
)
def test_bad_options_are_a_usage_error(arguments):
    with pytest.raises(SystemExit) as exit_:
        main(["--impl", "kvcache:kv_cache_update_jax", *arguments])
    assert exit_.value.code == 2


def test_the_snippet_rebuilds_every_array_bit_for_bit():
    base = REGRESSIONS[0].update
    weird = np.resize(special_values(np.dtype("float32")), base.kv_cache_pages.shape)
    update = dataclasses.replace(base, kv_cache_pages=weird)
    namespace: dict = {}
    exec(snippet("kvcache:kv_cache_update_jax", Failure(update, None, "")), namespace)
    rebuilt = namespace["update"]
    for name in ("new_kv_tokens", "slice_indices", "kv_cache_pages", "total_update_slices"):
        original, copy = getattr(update, name), getattr(rebuilt, name)
        assert (copy.shape, copy.dtype) == (original.shape, original.dtype), name
        assert np.array_equal(bits(copy), bits(original)), name


def test_list_names_what_would_be_checked_and_checks_nothing(monkeypatch, capsys):
    def no_checking(*args, **kwargs):
        raise AssertionError("--list started a check")

    monkeypatch.setattr(cli, "supervise", no_checking)
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for case in all_cases(True):
        assert re.search(rf"^  {case.name} +{case.tier.name.lower()}\b", out, re.M), case.id
    shapes = out.split("shapes (the pool", 1)[1].split("\ndtypes:", 1)[0].splitlines()[2:]
    assert len(shapes) == len(BUCKETS)
    for words in (ALL_STATUSES, DIAGNOSES, PROFILES, CALL_MODES, TIERS, DTYPES):
        assert all(str(word) in out for word in words), words


def test_list_shows_the_pool_fitted_to_the_constraints_and_refuses_a_bad_one(capsys):
    assert main(["--list", "--constraint", "dtype=bfloat16", "--constraint", "head_dim%128"]) == 0
    out = capsys.readouterr().out
    _, rest = out.split("shapes (the pool, fitted to dtype=bfloat16, head_dim%128):\n", 1)
    header, *rows = rest.split("\ndtypes:", 1)[0].splitlines()
    assert header.split()[:5] == ["page_size", "pages", "heads", "head_dim", "dtype"]
    assert rows and all(r.split()[4] == "bfloat16" and int(r.split()[3]) % 128 == 0 for r in rows)
    assert main(["--list", "--constraint", "columns%24"]) == 0
    assert (
        "drawn with 48 columns for a kernel run in the TPU interpreter" in capsys.readouterr().out
    )
    with pytest.raises(SystemExit) as exited:
        main(["--list", "--constraint", "dtype=int64"])
    assert exited.value.code == 2
    assert "dtype must be one of float32" in capsys.readouterr().err


def test_a_snippet_imports_only_the_public_packages():
    """What a user pastes must not break when the harness's own modules move."""
    text = snippet(
        "kvcache:kv_cache_update_jax", Failure(REGRESSIONS[0].update, None, ""), "pages=1,heads=1"
    )
    imported = [
        line.split()[1] for line in text.splitlines() if line.startswith(("import ", "from "))
    ]
    assert imported and set(imported) <= {"numpy", "jax.numpy", "properties", "kvcache"}, imported


def test_a_correct_implementation_passes_with_exit_0_and_the_header_names_its_options(
    tmp_path, capsys
):
    """Every serving case in a child that starts JAX and compiles each shape: 25 to 35 s."""
    status, report = run_cli(
        tmp_path,
        "--impl",
        "kvcache:kv_cache_update_jax",
        "--tier",
        "serving",
        "--constraint",
        "heads%2",
        "--constraint",
        "page_size %4",
        "--compare",
        "values",
    )
    assert status == 0
    [results] = report["implementations"]
    assert {r["status"] for r in results["results"]} == {"passed"}
    assert report["constraints"] == ["heads%2", "page_size%4"]
    header, _, rest = capsys.readouterr().out.partition("\n")
    assert header.startswith("constraints: heads%2, page_size%4; compare: values; platform: ")
    assert f"jaxlib {jaxlib.__version__} on {jax.default_backend()}" in header
    assert all(d in header for d in report["platform"]["nan_payloads_quieted"])
    assert "kvcache:kv_cache_update_jax  matches-oracle" in rest


def test_examples_count_what_was_tried_not_shrink_steps(tmp_path):
    """A mutant that fails every general case, each failure shrunk for up to a second (what is
    counted is what shrinking must not add): run once (marked process)."""
    status, report = run_cli(
        tmp_path,
        "--impl",
        "properties.known_bad.mutants:count_minus_one",
        "--tier",
        "general",
        "--shrink-seconds",
        "1",
    )
    assert status == 1
    for r in report["implementations"][0]["results"]:
        # the budget (a share for each pool shape) and the explicit examples, in every mode
        budget = examples_per_shape(3, len(BUCKETS)) * len(BUCKETS)
        assert r["examples"] <= budget + len(CALL_MODES) * len(REGRESSIONS), r
