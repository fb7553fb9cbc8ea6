"""Constraints keep every example the harness runs inside the shapes they admit, the explicit
regression examples included: an implementation that cannot take a shape is never given one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcache
from oracle.contract import Tier
from properties._src.cases.regressions import REGRESSIONS
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.domain.constraints import Constraint, admitted
from properties._src.drawing.strategies import updates
from properties._src.running.api import cases_on, check

LANE_ALIGNED = (Constraint("head_dim", 128),)


def lane_aligned_only(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """The fallback, refusing what a TPU kernel's layout refuses."""
    assert new_kv_tokens.shape[2] % 128 == 0, f"head_dim {new_kv_tokens.shape[2]}"
    return kvcache.kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


def test_bucket_of_an_update_is_its_static_shape():
    update = REGRESSIONS[0].update
    of = Bucket.of(update)
    assert (of.page_size, of.num_pages, of.heads, of.head_dim) == (4, 4, 1, 1)
    assert (of.num_tokens, of.num_slices, of.count_shape, of.dtype) == (8, 4, (1,), "float32")
    assert np.dtype(of.numpy_dtype) == update.kv_cache_pages.dtype
    assert admitted(of, ()) and not admitted(of, LANE_ALIGNED)


@settings(max_examples=len(BUCKETS), database=None)
@given(st.data())
def test_bucket_of_a_drawn_update_is_its_bucket(data):
    bucket = data.draw(st.sampled_from(BUCKETS))
    assert Bucket.of(data.draw(updates(Tier.GENERAL, (bucket,)))) == bucket


def test_regression_examples_that_break_a_constraint_are_skipped():
    result = check(
        lane_aligned_only,
        tier="serving",
        max_examples=2,
        profile="ci",
        constraints=["head_dim%128"],
    )
    assert result.passed, [r.counterexample for r in result.not_passed]


def test_regression_examples_run_without_constraints():
    first_case = cases_on("serving")[:1]  # the others would fail on a drawn example and shrink it
    result = check(lane_aligned_only, cases=first_case, max_examples=1, profile="ci")
    assert not result.passed
    assert "head_dim 1" in result.not_passed[0].counterexample
