"""NaN payloads the backend's own scatter quiets are the platform's, not the implementation's.

A correct writer built on a bare ``.at[].set`` passes ``bits`` whatever the platform; every
other bit stays compared; and a NaN-payload change in a dtype the backend scatters exactly
still fails (shown with the probe's answer faked where the platform itself is exact)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import jaxlib
import numpy as np
import pytest

from oracle.contract import Update
from properties._src.calling.implementations import Implementation, call, load
from properties._src.domain.buckets import DTYPES
from properties._src.judging import comparison
from properties._src.judging.checks import PROPERTIES
from properties._src.judging.diagnosis import explain
from properties._src.judging.judge import judged_call
from properties._src.judging.steps import Step
from properties.known_bad.mutants import count_minus_one, quiet_nans

MATCHES_ORACLE = PROPERTIES[0]
# Narrow types, where every bit pattern fits in a small cache, and float32.
NARROW = ["bfloat16", "float16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3", "float8_e3m4"]


def scatter_writer(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """Correct, as most engines' fallbacks: the rows to write worked out on the host, then
    one bare ``.at[].set`` of the cache."""
    update = Update.of(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )
    dst, src = [], []
    for _, start, source, length in update.columns():
        dst += range(start, start + length)
        src += range(source, source + length)
    return (
        jnp.asarray(kv_cache_pages).at[np.array(dst)].set(jnp.asarray(new_kv_tokens)[np.array(src)])
    )


SCATTER_WRITER = Implementation("scatter_writer", scatter_writer)


def every_pattern(dtype: str, page_size: int = 4) -> Update:
    """A cache holding every bit pattern of a one- or two-byte ``dtype`` (NaNs with every
    payload) four to a row, two columns writing tokens that hold patterns too."""
    unsigned = np.dtype(f"u{np.dtype(jnp.dtype(dtype)).itemsize}")
    cache = np.arange(2 ** (8 * unsigned.itemsize), dtype=unsigned).view(dtype)
    cache = cache.reshape(-1, 1, 4)
    tokens = cache[::-1][: 2 * page_size].copy()
    return Update(
        new_kv_tokens=tokens,
        slice_indices=np.array([[0, 2 * page_size], [0, page_size], [3, page_size]], np.int32),
        kv_cache_pages=cache,
        total_update_slices=np.array([2], np.int32),
        page_size=page_size,
    )


def with_signalling_nan(update: Update, row: int) -> Update:
    cache = update.kv_cache_pages.astype(np.float32)
    cache.view(np.uint32)[row, 0, 0] = 0x7F800001  # a signalling NaN with payload 1
    return dataclasses.replace(
        update, kv_cache_pages=cache, new_kv_tokens=update.new_kv_tokens.astype(np.float32)
    )


@pytest.fixture
def probe_says(monkeypatch):
    """Fake the probe's answer: ``probe_says(True)`` (quiets every dtype) or ``False``."""

    def fake(quiets: bool) -> None:
        monkeypatch.setattr(comparison, "quiets_nan_payloads", lambda dtype: quiets)

    return fake


@pytest.mark.parametrize("dtype", NARROW)
def test_a_bare_scatter_writer_passes_by_bits_whatever_the_platform_does_to_nans(dtype):
    update = every_pattern(dtype)
    actual = call(SCATTER_WRITER, update)
    quieted = comparison.quiets_nan_payloads(dtype)
    # The writer's result differs from the oracle's in NaN payloads exactly where the probe
    # says the backend's scatter quiets them, and nowhere else.
    assert explain(update, actual).codes == (("nan-payload",) if quieted else ())
    for prop in PROPERTIES:
        assert judged_call(SCATTER_WRITER, prop, Step(update))[1] is None, prop


@pytest.mark.parametrize("dtype", NARROW)
def test_where_the_backend_scatters_exactly_quieted_nans_still_fail(dtype, probe_says):
    quieted = comparison.quiets_nan_payloads(dtype)
    probe_says(False)  # the platform this run pretends to be copies every dtype exactly
    failure = judged_call(SCATTER_WRITER, MATCHES_ORACLE, Step(every_pattern(dtype)))[1]
    assert (failure is not None) == quieted
    if quieted:
        assert failure.diagnosis.codes == ("nan-payload",)


def test_a_real_nan_payload_change_fails_where_the_backend_scatters_exactly():
    update = with_signalling_nan(every_pattern("float8_e4m3fn"), 5)  # float32, with a sNaN
    assert not comparison.quiets_nan_payloads("float32")
    failure = judged_call(
        load("properties.known_bad.mutants:nan_quieted_everywhere"), MATCHES_ORACLE, Step(update)
    )[1]
    assert failure is not None and failure.diagnosis.codes == ("nan-payload",)


def test_only_nan_payloads_are_excused_every_other_bit_is_compared(probe_says):
    probe_says(True)
    update = with_signalling_nan(every_pattern("float8_e4m3fn"), 5)
    quieting = load("properties.known_bad.mutants:nan_quieted_everywhere")
    assert judged_call(quieting, MATCHES_ORACLE, Step(update))[1] is None

    def quiet_and_wrong(new_kv_tokens, slice_indices, kv_cache_pages, total, *, page_size):
        cache = quiet_nans(kv_cache_pages)
        return count_minus_one(new_kv_tokens, slice_indices, cache, total, page_size=page_size)

    wrong = judged_call(Implementation("both", quiet_and_wrong), MATCHES_ORACLE, Step(update))[1]
    assert wrong is not None and wrong.diagnosis.codes == ("values",)

    zeroed = dataclasses.replace(update, kv_cache_pages=update.kv_cache_pages.copy())
    zeroed.kv_cache_pages[40] = 0.0
    negated = call(load("kvcache:kv_cache_update_jax"), zeroed).copy()
    negated[40] = -0.0
    signed = judged_call(
        Implementation("x", lambda *a, page_size: negated), MATCHES_ORACLE, Step(zeroed)
    )[1]
    assert signed is not None and signed.diagnosis.codes == ("signed-zero",)


def test_platform_names_the_dtypes_whose_nans_a_plain_scatter_changes():
    """Told apart independently of the probe: a default-mode ``.at[].set`` of every pattern
    (a few float32 NaNs), eagerly, and which NaNs come back with other bits."""
    quieted = []
    for name in DTYPES:
        dtype = np.dtype(jnp.dtype(name))
        if not comparison.is_floating(dtype):
            continue
        unsigned = np.dtype(f"u{dtype.itemsize}")
        if dtype.itemsize <= 2:
            row = np.arange(2 ** (8 * dtype.itemsize), dtype=unsigned).view(dtype)
        else:
            row = np.array([0x7F800001, 0x7FC00001, 0xFFBFFFFF], unsigned).view(dtype)
        cache = jnp.asarray(np.stack([row, row]))
        written = np.asarray(cache.at[jnp.array([1])].set(cache[:1])).view(unsigned)
        with np.errstate(invalid="ignore"):
            if (written != row.view(unsigned)).any(axis=0)[np.isnan(row)].any():
                quieted.append(name)
    platform = comparison.platform()
    assert platform["nan_payloads_quieted"] == quieted
    assert platform["jaxlib"] == jaxlib.__version__


def test_the_header_says_what_bits_compares_by_value_and_why():
    quieting = {"jaxlib": "0.10.2", "backend": "cpu", "nan_payloads_quieted": ["bfloat16"]}
    assert comparison.platform_phrase(quieting, "bits") == (
        "platform: jaxlib 0.10.2 on cpu, whose scatter quiets the NaN payloads of bfloat16: "
        "their NaNs are compared by value"
    )
    assert comparison.platform_phrase(quieting, "values").endswith("NaN payloads of bfloat16")
    exact = dict(quieting, nan_payloads_quieted=[])
    assert comparison.platform_phrase(exact, "bits").endswith(
        "whose scatter keeps every NaN payload"
    )
