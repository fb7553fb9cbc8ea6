"""Calling as a serving engine calls: under ``jax.jit`` with the cache donated, and with
shapes that change between calls in one process. A bug that shows only there is reported
with the calling mode, and the step, that shows it."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest
from hypothesis import Phase, settings

from oracle.contract import Tier
from oracle.reference import reference_update
from properties._src.calling.implementations import (
    EAGER,
    JIT_DONATED,
    call,
    jitted,
    load,
)
from properties._src.cases.catalog import CASES
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.cases.shape_changes import SHAPE_CHANGES
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.judging.checks import bits
from properties._src.reporting.report import STEPS_REPLAYED, render
from properties._src.running.profiles import PROFILES
from properties._src.running.runner import run
from properties.known_bad import mutants

MUTANTS = "properties.known_bad.mutants"
SEARCH = settings(PROFILES["ci"], max_examples=20, phases=(Phase.generate, Phase.shrink))
FIND = settings(SEARCH, phases=(Phase.generate,))
UPDATE = REGRESSIONS[1].update  # column 1 is padding holding a plausible slice


def test_the_jitted_wrapper_donates_the_cache_and_is_made_once():
    implementation = load("kvcache:kv_cache_update_jax")
    assert jitted(implementation) is jitted(load("kvcache:kv_cache_update_jax"))
    arrays = jax.device_put(UPDATE.arrays())
    jitted(implementation)(*arrays, page_size=UPDATE.page_size).block_until_ready()
    assert arrays[2].is_deleted()


def test_an_unknown_calling_mode_is_refused():
    with pytest.raises(ValueError, match="unknown calling mode 'traced'"):
        call(load("kvcache:kv_cache_update_jax"), UPDATE, "traced")


def test_a_result_wrong_only_under_jit_is_reported_as_such():
    mutant = load(f"{MUTANTS}:count_assumed_full_when_traced")
    expected = reference_update(*UPDATE.arrays(), page_size=UPDATE.page_size)
    assert np.array_equal(bits(call(mutant, UPDATE, EAGER)), bits(expected))
    assert not np.array_equal(bits(call(mutant, UPDATE, JIT_DONATED)), bits(expected))
    outcome = run(
        mutant, CASES[0], RunConfig(settings=SEARCH, explicit_examples=False, buckets=BUCKETS[:3])
    )
    assert outcome.status == "failed"
    assert outcome.failure.message.startswith("under jax.jit with a donated cache: cache rows")
    snippet = render(mutant.name, outcome.failure).split("reproduce:\n", 1)[1]
    assert "mode='jit-donated'" in snippet
    with pytest.raises(AssertionError, match="differ from the oracle"):
        exec(snippet, {})


def test_a_count_read_on_host_fails_under_jit_and_passes_eagerly():
    outcome = run(
        load(f"{MUTANTS}:count_read_on_host"),
        CASES[0],
        # a drawn example on each shape after its simplest (called eagerly)
        RunConfig(
            settings=settings(SEARCH, max_examples=2 * len(BUCKETS)), explicit_examples=False
        ),
    )
    assert outcome.status == "failed"
    assert re.match(
        r"under jax.jit with a donated cache: the implementation raised \w*Concretization",
        outcome.failure.message,
    ), outcome.failure.message


def test_state_kept_between_shapes_is_caught_and_replayed_in_order(monkeypatch):
    # The mutant keeps its tables for the whole process: start from none, so what another test
    # in this worker called it on (a larger cache of the same page size) cannot hide the bug.
    monkeypatch.setattr(mutants, "_PAGE_STARTS", {})
    mutant = load(f"{MUTANTS}:page_table_keyed_by_page_size")
    outcome = run(mutant, SHAPE_CHANGES[0], RunConfig(settings=FIND, explicit_examples=False))
    assert outcome.status == "failed"
    failure = outcome.failure
    step = int(re.match(r"step (\d) of 7, ", failure.message).group(1))
    assert len(failure.before) == step - 1, failure.message
    # The steps before have the same page size (the table is kept per page size, from the
    # first cache of that page size this process saw: an earlier example's, or step 6's).
    assert {s.update.page_size for s in failure.before} <= {failure.update.page_size}
    snippet = render(mutant.name, failure).split("reproduce:\n", 1)[1]
    assert snippet.count("call(implementation, Update(") == min(step - 1, STEPS_REPLAYED)
    with pytest.raises(AssertionError, match="differ from the oracle"):
        exec(snippet, {})


def test_shape_changes_vary_tokens_columns_and_count_shape_one_at_a_time_on_one_cache():
    """Calls 2 to 5 of each example keep the first call's cache and change tokens, columns,
    the count's shape, then all three; call 6 doubles the pages, call 7 is the first again."""
    examples: list[list] = []
    config = RunConfig(settings=settings(FIND, max_examples=4), observe=examples.append)
    SHAPE_CHANGES[1].build(load("kvcache:kv_cache_update_jax"), config)()
    fields = ("num_tokens", "num_slices", "count_shape", "num_pages")
    for steps in examples:
        first, *rest = (Bucket.of(step.update) for step in steps)
        changed = [{f for f in fields if getattr(b, f) != getattr(first, f)} for b in rest]
        assert changed == [
            {"num_tokens"},
            {"num_slices"},
            {"count_shape"},
            {"num_tokens", "num_slices", "count_shape"},
            {"num_pages"},
            set(),
        ]
        assert rest[0].num_tokens > first.num_tokens  # the last call has fewer again


def test_shape_changes_cover_both_tiers():
    assert {case.tier for case in SHAPE_CHANGES} == {Tier.GENERAL, Tier.SERVING}
