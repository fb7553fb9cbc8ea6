"""A tier's property cases checked together (``catalog.units``, ``runner.run_together``): each
example is drawn once and called once, every property judges the one result, and each
property still gets its own verdict and its own shrunk counterexample."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import jax.numpy as jnp
from hypothesis import settings

from kvcache import kv_cache_update_jax
from oracle.contract import Tier
from properties._src.calling.implementations import Implementation
from properties._src.cases.catalog import CASES, PropertyCase, Unit, units
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS
from properties._src.judging.checks import bits
from properties._src.running.runner import run, run_together
from properties._src.supervising.supervisor import _Lane, _next_unit
from properties.known_bad.mutants import count_minus_one

QUICK = settings(max_examples=12, derandomize=True, database=None, deadline=None)
SMALL = BUCKETS[:3]  # a few pool shapes keep these searches short
GENERAL = next(u for u in units() if u.cases[0].tier == Tier.GENERAL and len(u.cases) > 1)


def test_a_tiers_property_cases_form_one_unit_and_every_other_case_its_own():
    grouped = units()
    assert sorted(c.id for u in grouped for c in u.cases) == sorted(c.id for c in CASES)
    for unit in grouped:
        kinds = {isinstance(c, PropertyCase) for c in unit.cases}
        if kinds == {True}:
            assert len({c.tier for c in unit.cases}) == 1
            assert len(unit.cases) == 3, [c.id for c in unit.cases]
        else:
            assert len(unit.cases) == 1
    assert [c.name for c in GENERAL.cases] == [
        "matches-oracle",
        "untouched-rows-unchanged",
        "shape-and-dtype-preserved",
    ]


def test_each_example_is_called_once_for_all_three_properties():
    calls: list = []
    config = RunConfig(settings=QUICK, buckets=SMALL, before_call=calls.append)
    outcomes = run_together(Implementation("jax", kv_cache_update_jax), GENERAL, config)
    assert [o.status for o in outcomes] == ["passed"] * 3
    examples = {o.examples for o in outcomes}
    assert len(examples) == 1 and len(calls) == examples.pop()  # not three calls an example


def test_a_property_judged_with_others_finds_what_it_finds_alone():
    """``count_minus_one`` breaks only ``matches-oracle``: checked with the other two it draws
    the same examples as alone (the unit's seed is its first case's) and shrinks to the same
    update, bit for bit; the other two pass."""
    implementation = Implementation("count_minus_one", count_minus_one)
    config = RunConfig(settings=QUICK, buckets=SMALL, explicit_examples=False)
    together = run_together(implementation, GENERAL, config)
    alone = run(implementation, GENERAL.cases[0], config)
    assert [o.status for o in together] == ["failed", "passed", "passed"]
    shown, expected = together[0].failure, alone.failure
    assert shown is not None and expected is not None
    for got, want in zip(shown.update.arrays(), expected.update.arrays(), strict=True):
        assert got.shape == want.shape and (bits(got) == bits(want)).all()
    assert together[0].examples == alone.examples


def test_each_failing_property_gets_its_own_counterexample():
    """Wrong by value on most caches, the wrong dtype on bfloat16 ones: ``matches-oracle``
    fails (either way), and the other two fail with the dtype, each on an example of its own
    that shows it (not the value-only one ``matches-oracle`` may have shrunk to)."""

    def wrong(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        result = count_minus_one(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        )
        return result.astype(jnp.float32) if result.dtype == jnp.bfloat16 else result

    shapes = tuple(b for b in BUCKETS if b.dtype in ("float32", "bfloat16"))
    config = RunConfig(settings=QUICK, buckets=shapes, explicit_examples=False)
    oracle, untouched, layout = run_together(Implementation("wrong", wrong), GENERAL, config)
    assert oracle.status == "failed"
    for outcome in (untouched, layout):
        assert outcome.status == "failed", outcome
        assert outcome.failure is not None and outcome.failure.prop == outcome.case.name
        assert outcome.failure.update.kv_cache_pages.dtype.name == "bfloat16"
        assert outcome.diagnosis.codes == ("shape-or-dtype",)


def test_a_unit_stopped_at_its_first_failure_leaves_the_rest_incomplete_not_passed():
    """``stop_at_first_failure``: ``count_minus_one`` fails ``matches-oracle`` early, and the
    other two properties, judged on the same calls, are not searched on past it."""
    implementation = Implementation("count_minus_one", count_minus_one)
    config = RunConfig(settings=QUICK, buckets=SMALL, explicit_examples=False)
    whole = run_together(implementation, GENERAL, config)
    stopped = run_together(implementation, GENERAL, replace(config, stop_at_first_failure=True))
    assert [o.status for o in stopped] == ["failed", "incomplete", "incomplete"]
    for outcome in stopped[1:]:
        assert outcome.error is not None
        assert outcome.error.startswith("the search stopped at the first failure of a case")
        assert outcome.examples < whole[1].examples
    assert stopped[0].failure is not None and whole[0].failure is not None
    assert stopped[0].failure.message == whole[0].failure.message


def test_a_unit_of_one_case_is_that_case():
    assert Unit((CASES[0],)).owner(None) == 0
    assert GENERAL.owner("shape-and-dtype-preserved") == 2


def test_lanes_on_one_implementation_compile_apart():
    """The second lane starts on shapes the first is not compiling (a sequence case's own, not
    the pool's), and each lane keeps to the shapes its child has compiled while any are left;
    every unit is handed out once."""
    grouped = units()
    left = deque(range(len(grouped)))
    first, second = _Lane("module:update", grouped), _Lane("module:update", grouped)
    taken: list[Unit] = []

    def take(lane: _Lane) -> str:
        taken.append(grouped[_next_unit(left, grouped, lane, [first, second])])
        lane.shapes = taken[-1].shapes
        return lane.shapes

    assert take(first) == "pool"
    own = take(second)
    assert own != "pool"
    assert take(first) == "pool"
    assert take(second) not in {"pool", own}
    while any(grouped[i].shapes == "pool" for i in left):
        assert take(first) == "pool"
    while left:
        assert take(second) != "pool"
    assert sorted(u.id for u in taken) == sorted(u.id for u in grouped)
