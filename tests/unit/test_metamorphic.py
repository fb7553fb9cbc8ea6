"""The metamorphic cases (``properties/_src/cases/metamorphic.py``; pytest runs them for every
implementation through ``CASES``): the rewrites they make, and that they catch a bug
without the oracle deciding the verdict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, settings

from properties._src.calling.implementations import load
from properties._src.cases.metamorphic import (
    METAMORPHIC,
    real_columns,
    splittable,
    with_columns,
)
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS
from properties._src.running.profiles import PROFILES
from properties._src.running.runner import run

FIND = settings(PROFILES["ci"], max_examples=40, phases=(Phase.generate,))
# The pool's shapes that hold columns to rewrite (two tokens, two columns or more), where a
# relation can see a column skipped within a small budget.
REWRITABLE = tuple(b for b in BUCKETS if splittable(b))


def test_with_columns_replaces_the_real_columns_and_keeps_the_padding():
    update = REGRESSIONS[1].update
    rewritten = with_columns(update, [(4, 2, 3)])
    assert real_columns(rewritten) == [(4, 2, 3)]
    assert np.array_equal(rewritten.slice_indices[:, 1:], update.slice_indices[:, 1:])
    assert real_columns(with_columns(update, [])) == []


@pytest.mark.parametrize(
    "case", [c for c in METAMORPHIC if c.name != "applying-twice-equals-once"], ids=lambda c: c.id
)
def test_a_relation_rejects_an_implementation_that_skips_the_last_column(case):
    outcome = run(
        load("properties.known_bad.mutants:count_minus_one"),
        case,
        RunConfig(settings=FIND, buckets=REWRITABLE),
    )
    assert outcome.status == "failed", outcome
    assert outcome.failure.message.startswith("call "), outcome.failure.message


def test_a_relation_failure_counts_the_examples_tried_not_the_shrink_steps():
    """A relation fails in the test itself, not in a judged call, so shrinking follows it, for
    3 s (what is counted is what shrinking must not add)."""
    budget = settings(PROFILES["ci"], max_examples=40)  # shrinking on
    outcome = run(
        load("properties.known_bad.mutants:count_minus_one"),
        METAMORPHIC[0],
        RunConfig(settings=budget, buckets=REWRITABLE, shrink_seconds=3),
    )
    assert outcome.status == "failed", outcome
    assert 1 <= outcome.examples <= 40 // 2, outcome.examples  # each example is two calls or more
