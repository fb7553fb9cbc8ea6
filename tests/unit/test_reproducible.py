"""A derandomised search draws the same examples whatever local modules are loaded: the
harness empties Hypothesis's pool of local constants while it searches."""

from __future__ import annotations

import hashlib
import importlib
import sys

from hypothesis import given, settings

from oracle.contract import Tier
from properties._src.drawing.reproducible import empties_local_constants, without_local_constants
from properties._src.drawing.strategies import updates

SEARCH = settings(max_examples=40, derandomize=True, database=None, deadline=None)

# A local module full of integers a draw could pick up, as an implementation's source is.
CONSTANTS = "\n".join(f"LIMIT_{i} = {v}" for i, v in enumerate([3, 5, 7, 11, 13, 17, 19, 23]))


def drawn() -> list[str]:
    """A digest of each example a fixed derandomised search of updates draws."""
    seen: list[str] = []

    @SEARCH
    @given(updates(Tier.GENERAL, zeros=True))
    def search(update):
        seen.append(hashlib.sha256(update.slice_indices.tobytes()).hexdigest()[:12])

    search()
    return seen


def test_this_hypothesis_has_the_pool_the_harness_empties():
    assert empties_local_constants()


def test_a_local_module_changes_no_draw_while_the_harness_searches(tmp_path, monkeypatch):
    with without_local_constants():
        before = drawn()
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "limits_of_some_kernel.py").write_text(CONSTANTS)
    importlib.import_module("limits_of_some_kernel")
    try:
        with without_local_constants():
            assert drawn() == before
        assert drawn() != before, "the local constants would change the draws otherwise"
    finally:
        del sys.modules["limits_of_some_kernel"]
