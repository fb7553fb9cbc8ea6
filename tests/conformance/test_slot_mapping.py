"""``kvcache.slot_mapping`` builds serving-tier layouts that write each token where it belongs.

The per-token reference below is independent of the builder: it walks every scheduled token
and writes it to ``block_table[position // page_size] * page_size + position % page_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvcache.slot_mapping import padded_slice_count, slot_mapping
from oracle.contract import Tier, Update, violations
from oracle.reference import reference_update
from properties._src.cases.catalog import differing_rows


@dataclass(frozen=True)
class Step:
    """One scheduler step: requests' block tables, tokens already cached and tokens scheduled."""

    page_size: int
    num_pages: int
    block_tables: list[list[int]]
    computed: list[int]
    scheduled: list[int]
    num_tokens: int  # the padded token count (a bucket), >= sum(scheduled)


@st.composite
def steps(draw) -> Step:
    """Requests owning disjoint pages of one cache, some with nothing scheduled."""
    page_size = draw(st.integers(1, 8))
    pool = list(draw(st.permutations(range(draw(st.integers(1, 12))))))
    num_pages = len(pool)
    tables, computed, scheduled = [], [], []
    while pool and draw(st.booleans()):
        owned = draw(st.integers(1, len(pool)))
        tables.append(pool[:owned])
        pool = pool[owned:]
        capacity = owned * page_size
        done = draw(st.integers(0, capacity))
        computed.append(done)
        scheduled.append(draw(st.integers(0, capacity - done)))
    num_tokens = sum(scheduled) + draw(st.integers(0, 2 * page_size))
    return Step(page_size, num_pages, tables, computed, scheduled, num_tokens)


def per_token_reference(step: Step, new_kv_tokens: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Write each scheduled token into its page, one token at a time."""
    cache = cache.copy()
    source = 0
    for table, done, new in zip(step.block_tables, step.computed, step.scheduled, strict=True):
        for position in range(done, done + new):
            page, offset = divmod(position, step.page_size)
            cache[table[page] * step.page_size + offset] = new_kv_tokens[source]
            source += 1
    return cache


def build(step: Step) -> Update:
    """The step's update: tokens are ``1..num_tokens``, cache rows ``-1, -2, ...``."""
    slice_indices, count = slot_mapping(
        step.block_tables,
        step.computed,
        step.scheduled,
        page_size=step.page_size,
        num_tokens=step.num_tokens,
    )
    rows = step.num_pages * step.page_size
    return Update(
        new_kv_tokens=np.arange(1, step.num_tokens + 1, dtype=np.int32).reshape(-1, 1, 1),
        slice_indices=slice_indices,
        kv_cache_pages=-np.arange(1, rows + 1, dtype=np.int32).reshape(-1, 1, 1),
        total_update_slices=count,
        page_size=step.page_size,
    )


@given(steps())
def test_output_obeys_every_serving_rule(step):
    update = build(step)
    # A step that schedules nothing is no serving step (rule step-nonempty): runners never
    # make one; slot_mapping still builds a valid general-tier update of no real columns.
    tier = Tier.SERVING if sum(step.scheduled) else Tier.GENERAL
    assert violations(update, tier) == []
    expected_columns = padded_slice_count(len(step.block_tables), step.num_tokens, step.page_size)
    assert update.slice_indices.shape == (3, max(expected_columns, 1))
    padding = update.slice_indices[:, update.num_real_slices :]
    assert not padding.any(), f"padding columns are not (0, 0, 0): {padding.T.tolist()}"


@given(steps())
def test_applying_it_writes_each_token_into_its_page(step):
    update = build(step)
    actual = reference_update(*update.arrays(), page_size=step.page_size)
    expected = per_token_reference(step, update.new_kv_tokens, update.kv_cache_pages)
    rows = differing_rows(expected, actual)
    assert rows.size == 0, f"cache rows {rows.tolist()} differ from the per-token reference"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_slices": 1}, "needs 2 slices; num_slices is 1"),
        ({"num_tokens": 4}, "5 tokens are scheduled; num_tokens is 4"),
        ({"page_size": 0}, "page_size must be >= 1"),
    ],
)
def test_refuses_a_layout_that_does_not_fit(kwargs, message):
    arguments = {"page_size": 4} | kwargs
    with pytest.raises(ValueError, match=message):
        slot_mapping([[3, 1]], [2], [5], **arguments)


def test_refuses_a_request_past_its_block_table():
    with pytest.raises(ValueError, match="the block table has 1"):
        slot_mapping([[0]], [3], [2], page_size=4)
