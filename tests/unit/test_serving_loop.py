"""The serving-loop case (``properties/_src/cases/serving_loop.py``; pytest runs it for every
implementation through ``CASES``): it finds a bad step, says which, and replays it."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import Phase, settings

from kvcache.slot_mapping import padded_slice_count
from oracle.contract import Tier, violations
from properties._src.calling.implementations import load
from properties._src.cases.run_config import RunConfig
from properties._src.cases.serving_loop import MAX_REQUESTS, SERVING_LOOP, Runner, rows_of
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.domain.constraints import Constraint
from properties._src.judging.steps import Step
from properties._src.reporting.report import render
from properties._src.running.profiles import PROFILES
from properties._src.running.runner import run

FIND = settings(PROFILES["ci"], max_examples=20, phases=(Phase.generate,))


def test_a_page_aligned_slice_one_page_late_is_caught_at_its_step():
    spec = "properties.known_bad.mutants:page_aligned_one_page_late"
    outcome = run(load(spec), SERVING_LOOP, RunConfig(settings=FIND))
    assert outcome.status == "failed"
    failure = outcome.failure
    step = re.match(
        r"step (\d+): \d+ requests, \d+ tokens in a bucket of \d+ tokens and \d+ columns, "
        r"(called eagerly|under jax.jit)",
        failure.message,
    )
    assert step, failure.message
    assert len(failure.before) == int(step.group(1)) - 1
    with pytest.raises(AssertionError, match="differ from the oracle"):
        exec(render(spec, failure).split("reproduce:\n", 1)[1], {})


def loop_steps(config: RunConfig) -> list[Step]:
    """Every step of every run of the serving loop on the fallback under ``config``."""
    runs: list[list[Step]] = []
    SERVING_LOOP.build(
        load("kvcache:kv_cache_update_jax"), dataclasses.replace(config, observe=runs.append)
    )()
    return [step for run in runs for step in run]


def test_every_step_is_a_serving_step_on_the_first_shape_that_holds_one():
    """The loop runs on the cache of the first shape that holds a serving step, and runs a
    step only when it schedules a token: every step obeys the serving tier (``step-nonempty``
    included)."""
    no_tokens = next(b for b in BUCKETS if b.num_tokens == 0)
    steps = loop_steps(RunConfig(buckets=(no_tokens, BUCKETS[0]), settings=FIND))
    cache = {dataclasses.replace(Bucket.of(s.update), num_tokens=0, num_slices=0) for s in steps}
    assert steps and cache == {dataclasses.replace(BUCKETS[0], num_tokens=0, num_slices=0)}
    assert [str(v) for step in steps for v in violations(step.update, Tier.SERVING)] == []


def test_steps_go_through_the_runners_token_buckets_on_one_cache():
    """Steps are padded to the runner's buckets, each with its padded column count: one
    cache, several token and column counts, a bucket below a page, tokens equal to columns."""
    runner = Runner(BUCKETS[0])
    shapes = {Bucket.of(step.update) for step in loop_steps(RunConfig(settings=FIND))}
    assert {(s.num_tokens, s.num_slices) for s in shapes} == {
        (t, padded_slice_count(MAX_REQUESTS, t, runner.cache.page_size))
        for t in runner.token_buckets
    }
    assert min(runner.token_buckets) < runner.cache.page_size
    assert any(s.num_tokens == s.num_slices for s in shapes)


def test_a_columns_constraint_pads_each_buckets_columns():
    runner = Runner(BUCKETS[0], (Constraint("columns", 8),))
    assert {runner.shape(t).num_slices % 8 for t in runner.token_buckets} == {0}


@pytest.mark.parametrize("bucket", BUCKETS, ids=lambda b: f"{b.dtype}-page{b.page_size}")
def test_token_ids_are_distinct_bit_patterns_in_every_bucket_dtype(bucket):
    rows = rows_of(bucket, np.arange(1, 100))
    assert rows.shape == (99, bucket.heads, bucket.head_dim) and rows.dtype == bucket.numpy_dtype
    flat = rows.reshape(len(rows), -1).view(f"u{rows.dtype.itemsize}")
    assert (flat == flat[:, :1]).all() and len(np.unique(flat[:, 0])) == len(rows)
