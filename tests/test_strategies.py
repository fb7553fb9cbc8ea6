"""The strategies themselves: every draw is valid for its tier, every feature the contract
allows is reachable, and counterexamples shrink to something a person can read."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

from oracle.contract import Tier, Update, violations
from properties._src.buckets import BUCKETS
from properties._src.cases import bits
from properties._src.strategies import special_values, updates

SEARCH = settings(
    max_examples=1000, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@settings(max_examples=200)
@given(updates(Tier.GENERAL))
def test_general_draws_obey_every_general_rule(update):
    assert violations(update, Tier.GENERAL) == []


@settings(max_examples=200)
@given(updates(Tier.SERVING))
def test_serving_draws_obey_every_serving_rule(update):
    assert violations(update, Tier.SERVING) == []


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


FEATURES = {
    "slice crossing a page boundary": (Tier.GENERAL, _crosses_page),
    "zero-length slice": (Tier.GENERAL, lambda u: any(ln == 0 for *_, ln in _spans(u))),
    "repeated sources": (Tier.GENERAL, _repeated_sources),
    "no real columns": (Tier.SERVING, lambda u: u.num_real_slices == 0),
    "every column real": (Tier.SERVING, lambda u: u.num_real_slices == u.slice_indices.shape[1]),
    "garbage in padding columns": (Tier.SERVING, _padding_is_garbage),
    "slice ending at the cache's last row": (Tier.SERVING, _ends_at_cache_end),
    "slice ending at the last new token": (
        Tier.GENERAL,
        lambda u: any(ln and s + ln == u.new_kv_tokens.shape[0] for _, s, ln in _spans(u)),
    ),
    "slice in the last page at an offset": (Tier.SERVING, _last_page_with_offset),
    "partial first page": (Tier.SERVING, _partial_first_page),
    "NaN with a payload": (Tier.SERVING, _has_nan_payload),
    "one-page cache": (Tier.SERVING, lambda u: u.kv_cache_pages.shape[0] == u.page_size),
    "page size 1": (Tier.SERVING, lambda u: u.page_size == 1 and u.num_real_slices > 0),
    "int8": (Tier.SERVING, lambda u: u.kv_cache_pages.dtype == np.int8 and u.num_real_slices > 0),
}


@pytest.mark.parametrize("feature", list(FEATURES))
def test_feature_is_reachable(feature):
    tier, present = FEATURES[feature]
    found = find(updates(tier), present, settings=SEARCH)
    assert present(found)
    assert violations(found, tier) == []


def test_counterexamples_shrink_to_the_smallest_bucket_and_one_column():
    found = find(updates(), lambda u: any(ln for *_, ln in _spans(u)), settings=SEARCH)
    assert found.page_size == BUCKETS[0].page_size
    assert found.kv_cache_pages.shape == (
        BUCKETS[0].cache_rows,
        BUCKETS[0].heads,
        BUCKETS[0].head_dim,
    )
    assert _spans(found) == [(0, 0, 1)]
    assert not _padding_is_garbage(found)


@pytest.mark.parametrize("dtype", sorted({b.dtype for b in BUCKETS}))
def test_special_values_are_distinct_bit_patterns(dtype):
    values = special_values(np.dtype(jnp.dtype(dtype)))
    assert len(set(bits(values).tolist())) == len(values)
