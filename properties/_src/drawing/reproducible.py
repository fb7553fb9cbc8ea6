"""Derandomised draws that depend on the profile and the test alone, not on the environment.

Hypothesis mixes constants it finds in the source of "local" modules (loaded, and outside
site-packages) into its integer and float draws. Which modules those are depends on how the
harness and the implementation under test are installed (a checkout on ``sys.path`` is
local, a wheel is not) and on what was imported before the draw: the ``ci`` profile drew
other examples under tox's ``pytest`` than under ``python -m pytest`` from a checkout. While
the harness searches (``without_local_constants``), that pool is empty, so a ``ci`` run draws
the same examples wherever it runs and a failure in CI replays on a laptop.

The pool is Hypothesis's internal state (``hypothesis.internal.conjecture.providers``); where
a Hypothesis version has none, there is nothing to empty, and
``tests/unit/test_reproducible.py`` says so by failing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hypothesis.internal.conjecture import providers


def empties_local_constants() -> bool:
    """Whether this Hypothesis has the pool ``without_local_constants`` empties."""
    return hasattr(providers, "_get_local_constants") and hasattr(providers, "CONSTANTS_CACHE")


@contextlib.contextmanager
def without_local_constants() -> Iterator[None]:
    """Hypothesis draws no constant from local modules inside this block (its own built-in
    constants stay: they are the same everywhere)."""
    if not empties_local_constants():
        yield
        return
    original = providers._get_local_constants
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # holds the pool's constants per kind of draw
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()
