"""The package as another project uses it: ``assert_conforms`` in its tests, and the pytest
plugin's ``--kvcache-impl`` and ``kvcache_implementation`` fixture, with nothing from this
repository but the installed package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# An update written from the operation's definition alone, and the same with one bug. It is
# jittable (the harness also calls it inside jax.jit) and scatters bit patterns, so NaN payloads
# survive an XLA that widens bfloat16 scatters.
IMPLEMENTATIONS = """
import jax.numpy as jnp
from jax import lax


def update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    if slice_indices.shape[1] == 0 or new_kv_tokens.shape[0] == 0:  # nothing to copy
        return kv_cache_pages
    dtype = kv_cache_pages.dtype
    as_bits = dtype if dtype == jnp.bool_ else jnp.dtype(f"uint{8 * dtype.itemsize}")
    tokens = lax.bitcast_convert_type(new_kv_tokens, as_bits)
    # int32: the loop's index is weakly typed, so against a uint8 count it would compare as
    # uint8 and column 256 would pass for column 0.
    n = jnp.reshape(total_update_slices, ()).astype(jnp.int32)
    rows = jnp.arange(page_size)

    def copy_column(column, cache):
        dst, src, length = slice_indices[0, column], slice_indices[1, column], slice_indices[2, column]
        written = (rows < length) & (column < n)
        target = jnp.where(written, dst + rows, cache.shape[0])  # past the end: dropped
        source = jnp.clip(src + rows, 0, tokens.shape[0] - 1)
        return cache.at[target].set(tokens[source], mode="drop")

    cache = lax.bitcast_convert_type(kv_cache_pages, as_bits)
    cache = lax.fori_loop(0, slice_indices.shape[1], copy_column, cache)
    return lax.bitcast_convert_type(cache, kv_cache_pages.dtype)


def update_ignoring_the_count(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    every_column = jnp.full((1,), slice_indices.shape[1], jnp.int32)
    return update(new_kv_tokens, slice_indices, kv_cache_pages, every_column, page_size=page_size)
"""

TESTS = """
import mymod
from properties import CASES, assert_conforms


def test_correct_update_conforms():
    assert_conforms(mymod.update, tier="serving", max_examples=8)


def test_broken_update_conforms():
    matches = [case for case in CASES if case.name == "matches-oracle"]
    assert_conforms(mymod.update_ignoring_the_count, cases=matches, tier="general", max_examples=24)


def test_the_implementation_under_test_conforms(kvcache_implementation):
    assert_conforms(kvcache_implementation, tier="serving", max_examples=4)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mymod=IMPLEMENTATIONS, test_mine=TESTS)
    return pytester


def test_assert_conforms_passes_a_correct_update_and_shows_a_broken_ones_counterexample(project):
    """A fresh pytest process with nothing of this repository: it imports JAX, compiles the
    shapes it draws for every serving case into a cold compilation cache (8 examples a case),
    and shrinks the broken update's failure: half a minute or so, run once (marked process)."""
    result = project.runpytest_subprocess(
        "--kvcache-impl", "mymod:update", "-v", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*kvcache implementations under test: mymod:update*",
            "*test_the_implementation_under_test_conforms?mymod:update? PASSED*",
            "*AssertionError: * checks did not pass*",
            "*mymod:update_ignoring_the_count: matches-oracle (*) failed ===*",
            "*padding columns (dst, src, len)*",
            "*reproduce:*",
        ]
    )


def test_an_unknown_implementation_is_a_usage_error(project):
    result = project.runpytest_subprocess("--kvcache-impl", "mymod:nothing_here")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'mymod:nothing_here': module 'mymod' has no attribute*"])


def test_without_implementations_the_fixture_has_none_to_run(project):
    result = project.runpytest_subprocess(
        "-k", "implementation_under_test", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*kvcache implementations under test: none*"])


ROOT = Path(__file__).parents[2]
JAX_LOADED = 'import sys; print("jax" in sys.modules)'


def test_loading_the_plugin_does_not_import_jax():
    """A fresh interpreter: importing the plugin (as pytest's entry point does) leaves JAX out."""
    loaded = subprocess.run(
        [sys.executable, "-c", f"import properties.plugin; {JAX_LOADED}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False", loaded.stderr


def test_a_pytest_run_that_does_not_use_the_plugin_does_not_import_jax(pytester, monkeypatch):
    """The plugin loads in every project with the package installed; one that names no
    implementation, mesh or constraint must not pay for JAX (nor start it)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's plugin, in the subprocess
    pytester.makepyfile(
        test_other="import sys\n\ndef test_no_jax():\n    assert 'jax' not in sys.modules\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*kvcache implementations under test: none*"])
