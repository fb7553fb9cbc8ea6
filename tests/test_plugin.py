"""The package as another project uses it: ``assert_conforms`` in its tests, and the pytest
plugin's ``--kvcache-impl`` and ``kvcache_implementation`` fixture, with nothing from this
repository but the installed package."""

from __future__ import annotations

import pytest

# An update written from the operation's definition alone, and the same with one bug.
IMPLEMENTATIONS = """
import jax.numpy as jnp
import numpy as np


def update(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    cache = np.array(kv_cache_pages)
    tokens = np.asarray(new_kv_tokens)
    indices = np.asarray(slice_indices)
    for column in range(int(np.asarray(total_update_slices).reshape(-1)[0])):
        dst, src, length = (int(v) for v in indices[:, column])
        cache[dst : dst + length] = tokens[src : src + length]
    return jnp.asarray(cache)


def update_ignoring_the_count(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    every_column = np.array([slice_indices.shape[1]], dtype=np.int32)
    return update(new_kv_tokens, slice_indices, kv_cache_pages, every_column, page_size=page_size)
"""

TESTS = """
import mymod
from properties import assert_conforms


def test_correct_update_conforms():
    assert_conforms(mymod.update, max_examples=20)


def test_broken_update_conforms():
    assert_conforms(mymod.update_ignoring_the_count, max_examples=20)


def test_the_implementation_under_test_conforms(kvcache_implementation):
    assert_conforms(kvcache_implementation, max_examples=5)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mymod=IMPLEMENTATIONS, test_mine=TESTS)
    return pytester


def test_assert_conforms_passes_a_correct_update_and_shows_a_broken_ones_counterexample(project):
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
