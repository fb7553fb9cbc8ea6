"""The strategies themselves: every draw is valid for its tier, every feature the contract
allows is reachable, and counterexamples shrink to something a person can read."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from oracle.contract import Tier, Update, violations
from oracle.reference import reference_update
from properties._src.calling.implementations import CALL_MODES, as_implementation
from properties._src.cases.catalog import CASES, PropertyCase, bits
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import (
    BUCKETS,
    DTYPES,
    INDEX_DTYPES,
    INTERPRETER_MAX_COLUMNS,
    SHRINK_TARGET,
    Bucket,
)
from properties._src.domain.classes import every_label, labels_of
from properties._src.domain.constraints import fitting, parse_all, within_memory
from properties._src.domain.covering import construct, every_target, name, targets_of
from properties._src.drawing.contents import special_values
from properties._src.drawing.reproducible import without_local_constants
from properties._src.drawing.shapes import any_bucket, as_strategy, for_tier, shape_space
from properties._src.drawing.strategies import updates
from properties._src.running.profiles import PROFILES

SEARCH = settings(
    max_examples=1000,
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@settings(max_examples=100, deadline=None)
@given(updates(Tier.GENERAL))
def test_general_draws_obey_every_general_rule(update):
    assert violations(update, Tier.GENERAL) == []


@settings(max_examples=100, deadline=None)
@given(updates(Tier.SERVING))
def test_serving_draws_obey_every_serving_rule(update):
    """A real column and a new token in every one (``step-nonempty``), though the pool holds
    shapes with no tokens and with no columns."""
    assert violations(update, Tier.SERVING) == []


def test_a_pool_with_no_shape_for_a_serving_step_is_refused_for_the_serving_tier():
    empty = tuple(b for b in BUCKETS if not (b.num_tokens and b.num_slices))
    assert empty and for_tier(empty, Tier.GENERAL) == empty
    with pytest.raises(ValueError, match="no serving step fits"):
        for_tier(empty, Tier.SERVING)


def _spans(update: Update):
    return [(dst, src, length) for _, dst, src, length in update.columns()]


def _crosses_page(u: Update) -> bool:
    return any(ln and d // u.page_size != (d + ln - 1) // u.page_size for d, _, ln in _spans(u))


def _repeated_sources(u: Update) -> bool:
    starts = [src for _, src, ln in _spans(u) if ln]
    return len(starts) != len(set(starts))


def _padding_is_garbage(u: Update) -> bool:
    return bool(np.any(u.slice_indices[:, u.num_real_slices :] != 0))


def _ends_at_cache_end(u: Update) -> bool:
    return any(ln and d + ln == u.kv_cache_pages.shape[0] for d, _, ln in _spans(u))


def _last_page_with_offset(u: Update) -> bool:
    rows = u.kv_cache_pages.shape[0]
    return any(ln and d + u.page_size > rows and d % u.page_size for d, _, ln in _spans(u))


def _partial_first_page(u: Update) -> bool:
    return any(ln and d % u.page_size and ln < u.page_size for d, _, ln in _spans(u))


def _has_nan_payload(u: Update) -> bool:
    tokens = u.new_kv_tokens
    if not np.issubdtype(tokens.dtype, np.floating) and tokens.dtype.kind != "V":
        return False
    canonical = bits(np.array([np.nan], dtype=tokens.dtype))[0]
    nan = np.isnan(tokens.astype(np.float32))
    return bool(np.any(nan & (bits(tokens) != canonical)))


def _written_rows(u: Update):
    return [d + i for d, _, ln in _spans(u) for i in range(ln)]


def _lengths(u: Update) -> list[int]:
    return [ln for *_, ln in _spans(u)]


def _repeats_past_the_tokens(u: Update) -> bool:
    return _repeated_sources(u) and sum(_lengths(u)) > u.new_kv_tokens.shape[0]


def _ends_past_table_range(u: Update) -> bool:
    top = np.iinfo(u.slice_indices.dtype).max
    return any(d + ln == top + 1 for d, _, ln in _spans(u))


def _dtype_written(name: str):
    return lambda u: u.kv_cache_pages.dtype == np.dtype(jnp.dtype(name)) and any(_lengths(u))


FEATURES = {
    "slice crossing a page boundary": (Tier.GENERAL, _crosses_page),
    "zero-length slice": (Tier.GENERAL, lambda u: any(ln == 0 for ln in _lengths(u))),
    "repeated sources": (Tier.GENERAL, _repeated_sources),
    "repeated sources writing more rows than there are tokens": (
        Tier.GENERAL,
        _repeats_past_the_tokens,
    ),
    "no real columns": (Tier.GENERAL, lambda u: u.num_real_slices == 0),
    "no columns at all": (Tier.GENERAL, lambda u: u.slice_indices.shape[1] == 0),
    "every column real": (Tier.SERVING, lambda u: u.num_real_slices == u.slice_indices.shape[1]),
    "every column real, over 8 of them": (
        Tier.GENERAL,
        lambda u: u.num_real_slices == u.slice_indices.shape[1] > 8,
    ),
    "over 8 non-empty columns": (Tier.SERVING, lambda u: sum(map(bool, _lengths(u))) > 8),
    "over 256 real columns": (Tier.GENERAL, lambda u: u.num_real_slices > 256),
    "garbage in padding columns": (Tier.SERVING, _padding_is_garbage),
    "slice ending at the cache's last row": (Tier.SERVING, _ends_at_cache_end),
    "slice ending at the last new token": (
        Tier.GENERAL,
        lambda u: any(ln and s + ln == u.new_kv_tokens.shape[0] for _, s, ln in _spans(u)),
    ),
    "destination in page 0": (
        Tier.SERVING,
        lambda u: any(ln and d < u.page_size for d, _, ln in _spans(u)),
    ),
    "destination in the last page": (
        Tier.SERVING,
        lambda u: any(
            ln and d >= u.kv_cache_pages.shape[0] - u.page_size for d, _, ln in _spans(u)
        ),
    ),
    "slice in the last page at an offset": (Tier.SERVING, _last_page_with_offset),
    "partial first page": (Tier.SERVING, _partial_first_page),
    "in-page offset over 255": (
        Tier.SERVING,
        lambda u: any(ln and d % u.page_size > 255 for d, _, ln in _spans(u)),
    ),
    "slice of 256 rows or more": (Tier.SERVING, lambda u: max(_lengths(u), default=0) >= 256),
    "row written past 2^15": (
        Tier.SERVING,
        lambda u: any(2**15 <= r < 2**16 for r in _written_rows(u)),
    ),
    "row written past 2^16": (Tier.SERVING, lambda u: any(r >= 2**16 for r in _written_rows(u))),
    "slice starting at an odd row past 2^24": (
        Tier.SERVING,
        lambda u: any(ln and d > 2**24 and d % 2 for d, _, ln in _spans(u)),
    ),
    "source past token 2047": (
        Tier.SERVING,
        lambda u: any(s + ln > 2048 for _, s, ln in _spans(u)),
    ),
    "no new tokens, real columns": (
        Tier.GENERAL,
        lambda u: u.new_kv_tokens.shape[0] == 0 and u.num_real_slices > 0,
    ),
    "NaN with a payload": (Tier.SERVING, _has_nan_payload),
    "one-page cache": (Tier.SERVING, lambda u: u.kv_cache_pages.shape[0] == u.page_size),
    "page size 1": (Tier.SERVING, lambda u: u.page_size == 1 and u.num_real_slices > 0),
    **{f"{name} written": (Tier.SERVING, _dtype_written(name)) for name in DTYPES},
    **{
        f"{name} slice table, a row written": (
            Tier.SERVING,
            lambda u, name=name: u.slice_indices.dtype == name and any(_lengths(u)),
        )
        for name in INDEX_DTYPES
    },
    **{
        f"{name} count, a row written": (
            Tier.SERVING,
            lambda u, name=name: u.total_update_slices.dtype == name and any(_lengths(u)),
        )
        for name in INDEX_DTYPES
    },
    "a slice ending one past the slice table's range": (Tier.SERVING, _ends_past_table_range),
}


# The one feature a ci run need not draw (the only shape with no tokens must come up in a
# general layout with real columns) is reached by a search of its own; every other feature is
# drawn by each ci run, which the replay below checks.
SEARCHED_ALONE = ["no new tokens, real columns"]
CI_FEATURES = [name for name in FEATURES if name not in SEARCHED_ALONE]


@pytest.mark.parametrize("feature", SEARCHED_ALONE)
def test_feature_is_reachable(feature):
    tier, present = FEATURES[feature]
    found = find(updates(tier), present, settings=settings(SEARCH, phases=[Phase.generate]))
    assert present(found)
    assert violations(found, tier) == []


def test_counterexamples_shrink_to_the_smallest_bucket_and_one_column_on_the_last_row():
    found = find(updates(), lambda u: any(ln for *_, ln in _spans(u)), settings=SEARCH)
    assert found.page_size == SHRINK_TARGET.page_size
    assert found.kv_cache_pages.shape == (
        SHRINK_TARGET.cache_rows,
        SHRINK_TARGET.heads,
        SHRINK_TARGET.head_dim,
    )
    assert _spans(found) == [(SHRINK_TARGET.cache_rows - 1, 0, 1)]
    assert not _padding_is_garbage(found)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_are_distinct_bit_patterns(dtype):
    values = special_values(np.dtype(jnp.dtype(dtype)))
    assert len(set(bits(values).tolist())) == len(values)


def _oracle_judge(step, prop, before=()):
    """Passes every call with the oracle's result, calling nothing: the cases draw as a ci run
    of an implementation that passes everything does, without compiling a shape."""
    del prop, before
    update = step.update
    return reference_update(*update.arrays(), page_size=update.page_size)


@pytest.mark.process
def test_each_ci_run_draws_every_pool_shape_and_the_rare_layouts():
    """Replays one ``ci`` run (every case, by search alone, the oracle as the implementation so
    every example passes) and checks what it drew: every pool shape, so every class of every
    dimension and relation and every pair of classes the pool covers (all but those left to
    ``thorough`` or no shape can have), every feature in ``CI_FEATURES``, and nothing outside
    its case's tier; and that each property case calls in both modes (eagerly, and under
    ``jax.jit`` with the cache donated). It is as long as a ``ci`` run of every case (about a
    minute): what it checks is the drawing, Python code, so it is marked ``process`` and runs on
    one Python."""
    shapes: set[Bucket] = set()
    features: set[str] = set()
    invalid: list[str] = []
    modes: dict[str, set[str]] = {}
    for case in CASES:
        seen: list = []  # a Step per example, or the list a sequence case fills as it goes
        config = RunConfig(
            explicit_examples=False,
            observe=seen.append,
            judge=_oracle_judge,
            settings=PROFILES["ci"],
        )
        with without_local_constants():  # as the runner draws
            case.build(as_implementation(reference_update), config)()
        for observed in seen:
            for step in observed if isinstance(observed, list) else [observed]:
                u = step.update
                shapes.add(Bucket.of(u))
                features.update(name for name, (_, present) in FEATURES.items() if present(u))
                invalid.extend(str(v) for v in violations(u, case.tier))
                modes.setdefault(case.id, set()).add(step.mode)
    assert invalid == []
    one_mode = [c.id for c in CASES if isinstance(c, PropertyCase) and modes[c.id] != {*CALL_MODES}]
    assert one_mode == []
    assert [b for b in BUCKETS if b not in shapes] == []
    reached = {label for b in shapes for label in labels_of(b)}
    assert [label for label in every_label() if label not in reached] == []
    covered = {t for b in shapes for t in targets_of(b)}
    assert [name(t) for t in every_target() if t not in covered and t not in UNCOVERED] == []
    assert sorted(set(CI_FEATURES) - features) == []


# The targets (pairs of classes, dtypes) the pool leaves to thorough or no shape can have.
UNCOVERED = {*construct().left_to_thorough, *construct().outside_domain}


def test_constraints_fit_the_pool_keeping_its_classes():
    fitted = fitting(BUCKETS, parse_all(["head_dim%128", "heads%4", "page_size%256"]))
    assert all(b.head_dim % 128 == 0 and b.heads % 4 == 0 for b in fitted)
    assert all(within_memory(b) for b in fitted)
    assert all(b.page_size <= np.iinfo(b.table_dtype).max for b in fitted)
    kept = {label for b in fitted for label in labels_of(b)}
    wanted = {"columns: none", "new tokens: none", "columns: over 512", "page bytes: over 2 MiB"}
    assert wanted <= kept
    assert fitted[0].page_size == 256  # the first shape, fitted


def test_the_pool_is_the_covering_array_and_starts_with_the_shrink_target():
    """``BUCKETS`` is ``covering.construct()``'s output written out; counterexamples shrink to
    its first shape, which an interpreted kernel can afford, so a property case has called it
    before any shape of more columns (``shapes.within_budget``)."""
    assert construct().pool == BUCKETS
    assert BUCKETS[0] == SHRINK_TARGET and SHRINK_TARGET.num_slices <= INTERPRETER_MAX_COLUMNS
    assert {b.dtype for b in BUCKETS} == set(DTYPES)
    assert {b.table_dtype for b in BUCKETS} == {b.count_dtype for b in BUCKETS} == set(INDEX_DTYPES)


def test_interpreted_kernels_see_pages_past_2_mib():
    """What makes a shape dear for an interpreted kernel is its grid steps, not its bytes."""
    assert any(
        b.num_slices <= INTERPRETER_MAX_COLUMNS and "page bytes: over 2 MiB" in labels_of(b)
        for b in BUCKETS
    )


def test_a_constraint_nothing_fits_is_refused_by_name():
    with pytest.raises(ValueError, match="head_dim%10000000"):
        fitting(BUCKETS, parse_all(["head_dim%10000000"]))


@settings(max_examples=50, deadline=None)
@given(any_bucket(parse_all(["pages%2", "heads%4", "head_dim%8"])))
def test_free_shapes_meet_constraints_and_memory_bounds(bucket):
    assert bucket.num_pages % 2 == 0 and bucket.heads % 4 == 0 and bucket.head_dim % 8 == 0
    assert within_memory(bucket)


def test_thorough_draws_beyond_the_pool():
    free = find(
        as_strategy(shape_space(free=True)),
        lambda b: b not in BUCKETS and b.table_dtype != "int32",
        settings=settings(SEARCH, phases=[Phase.generate]),
    )
    assert free.dtype in DTYPES
