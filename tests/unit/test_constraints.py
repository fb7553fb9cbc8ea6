"""Constraints keep every example the harness runs inside the shapes they admit, the explicit
regression examples included: an implementation that cannot take a shape is never given one."""

from __future__ import annotations

from dataclasses import replace

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcache
from oracle.contract import Tier
from properties._src.cases.regressions import REGRESSIONS
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.domain.constraints import Constraint, admitted, fitting, parse_all
from properties._src.drawing.shapes import any_bucket
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


def taking_only(argument: int, dtype, what: str):
    """The fallback, refusing any argument ``argument`` (``what``) not of ``dtype``."""

    def update(*arrays, page_size):
        assert arrays[argument].dtype == dtype, f"{what} {arrays[argument].dtype}"
        return kvcache.kv_cache_update_jax(*arrays, page_size=page_size)

    return update


def test_a_dtype_constraint_reads_back_as_written_and_a_wrong_one_says_why():
    assert parse_all(["table_dtype=int32", "count_dtype = uint8"]) == (
        Constraint("table_dtype", dtype="int32"),
        Constraint("count_dtype", dtype="uint8"),
    )
    assert str(Constraint.parse("table_dtype=int32")) == "table_dtype=int32"
    assert str(Constraint.parse("dtype=bfloat16")) == "dtype=bfloat16"
    for text, says in [
        ("table_dtype=float32", "table_dtype must be one of int8"),
        ("dtype=int64", "dtype must be one of float32"),
        ("cache_dtype=int32", "FIELD one of dtype, table_dtype, count_dtype"),
        ("table_dtype%2", "DIMENSION one of heads"),
    ]:
        with pytest.raises(ValueError, match=says):
            Constraint.parse(text)


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int32"])
def test_the_pool_fitted_to_a_table_dtype_has_only_that_table_and_pages_it_can_index(dtype):
    fitted = fitting(BUCKETS, (Constraint("table_dtype", dtype=dtype),))
    assert {b.table_dtype for b in fitted} == {dtype}
    assert all(b.page_size <= np.iinfo(dtype).max for b in fitted)
    kept = [b for b in BUCKETS if b.page_size <= np.iinfo(dtype).max]
    assert len(fitted) == len(dict.fromkeys(replace(b, table_dtype=dtype) for b in kept))


def test_the_pool_fitted_to_cache_dtypes_takes_each_in_turn_and_keeps_its_classes():
    """Several constraints on one field admit any of their dtypes: the shapes of other
    dtypes take them in turn, so every one is drawn; constraints that leave no shape say so."""
    constraints = parse_all(["dtype=bfloat16", "dtype=float32", "heads%2"])
    fitted = fitting(BUCKETS, constraints)
    assert {b.dtype for b in fitted} == {"bfloat16", "float32"}
    assert all(admitted(b, constraints) and b.heads % 2 == 0 for b in fitted)
    with pytest.raises(ValueError, match="no shape satisfies"):
        fitting(BUCKETS, parse_all(["table_dtype=int8", "page_size%256"]))


@settings(max_examples=50, database=None, deadline=None)
@given(st.data())
def test_free_shapes_take_the_constrained_dtypes(data):
    constraints = parse_all(
        ["dtype=float8_e5m2", "dtype=int8", "table_dtype=int16", "count_dtype=uint32", "heads%2"]
    )
    bucket = data.draw(any_bucket(constraints))
    assert bucket.dtype in ("float8_e5m2", "int8")
    assert (bucket.table_dtype, bucket.count_dtype) == ("int16", "uint32")
    assert bucket.page_size <= np.iinfo(np.int16).max and bucket.heads % 2 == 0


@pytest.mark.parametrize(
    ("constraint", "implementation", "what"),
    [
        # as tpu-inference's and vLLM's kernels do
        ("table_dtype=int32", taking_only(1, np.int32, "table"), "table"),
        # as a kernel written for one cache dtype would
        ("dtype=bfloat16", taking_only(2, jnp.bfloat16, "cache"), "cache"),
    ],
)
def test_an_implementation_taking_one_dtype_only_passes_under_its_constraint_alone(
    constraint, implementation, what
):
    first_case = cases_on("serving")[:1]
    options = {"cases": first_case, "max_examples": 4, "profile": "ci"}
    assert check(implementation, constraints=[constraint], **options).passed
    refused = check(implementation, **options).not_passed
    assert refused and f"{what} " in refused[0].counterexample
