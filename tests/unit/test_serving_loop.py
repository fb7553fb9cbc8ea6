"""The serving-loop case (``properties/_src/cases/serving_loop.py``; pytest runs it for every
implementation through ``CASES``): it finds a bad step, says which, and replays it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import Phase, settings

from oracle.contract import Tier, violations
from properties._src.calling.implementations import load
from properties._src.cases.run_config import RunConfig
from properties._src.cases.serving_loop import SERVING_LOOP, rows_of
from properties._src.domain.buckets import BUCKETS, Bucket
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
        r"step (\d+): \d+ requests, \d+ tokens, (called eagerly|under jax.jit)", failure.message
    )
    assert step, failure.message
    assert len(failure.before) == int(step.group(1)) - 1
    with pytest.raises(AssertionError, match="differ from the oracle"):
        exec(render(spec, failure).split("reproduce:\n", 1)[1], {})


def test_every_step_is_a_serving_step_even_when_the_first_shape_holds_none():
    """The loop runs on the first shape that holds a serving step, and runs a step only when
    it schedules a token: every step obeys the serving tier (``step-nonempty`` included)."""
    no_tokens = next(b for b in BUCKETS if b.num_tokens == 0)
    runs: list[list] = []
    SERVING_LOOP.build(
        load("kvcache:kv_cache_update_jax"),
        RunConfig(observe=runs.append, buckets=(no_tokens, BUCKETS[0]), settings=FIND),
    )()
    steps = [step for run in runs for step in run]
    assert steps and {Bucket.of(step.update) for step in steps} == {BUCKETS[0]}
    assert [str(v) for step in steps for v in violations(step.update, Tier.SERVING)] == []


@pytest.mark.parametrize("bucket", BUCKETS, ids=lambda b: f"{b.dtype}-page{b.page_size}")
def test_token_ids_are_distinct_bit_patterns_in_every_bucket_dtype(bucket):
    rows = rows_of(bucket, np.arange(1, 100))
    assert rows.shape == (99, bucket.heads, bucket.head_dim) and rows.dtype == bucket.numpy_dtype
    flat = rows.reshape(len(rows), -1).view(f"u{rows.dtype.itemsize}")
    assert (flat == flat[:, :1]).all() and len(np.unique(flat[:, 0])) == len(rows)
