"""The TPU interpreter's callbacks get host arrays (``host_callbacks``); every other
``io_callback`` goes through JAX as before, and interpreted results keep every bit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import callback as jax_callback
from jax.experimental import io_callback

from oracle.reference import reference_update
from properties._src.calling import host_callbacks
from properties._src.calling.implementations import call, load
from properties._src.cases.regressions import REGRESSIONS
from properties._src.judging.checks import bits


def test_an_implementations_own_io_callback_still_gets_jax_arrays():
    seen = []

    def record(x):
        seen.append(type(x))
        return x

    @jax.jit
    def program(x):
        return io_callback(record, jax.ShapeDtypeStruct((2,), jnp.float32), x, ordered=True)

    with host_callbacks.host_arguments():
        assert jax_callback.io_callback_impl is not host_callbacks._IO_CALLBACK_IMPL
        out = program(jnp.arange(2, dtype=jnp.float32))
    assert jax_callback.io_callback_impl is host_callbacks._IO_CALLBACK_IMPL
    assert np.array_equal(out, [0.0, 1.0])
    assert seen and all(issubclass(t, jax.Array) for t in seen), seen


def test_only_the_interpreters_callbacks_are_recognised():
    from jax._src.pallas.mosaic.interpret import interpret_pallas_call as interpreter

    ours = jax_callback._FlatCallback(functools.partial(interpreter.get, source_info=None), None)
    theirs = jax_callback._FlatCallback(functools.partial(print, end=""), None)
    assert host_callbacks._interpreters(ours)
    assert not host_callbacks._interpreters(theirs)


def test_the_interpreted_kernel_gives_the_oracles_bits_with_host_arguments():
    kernel = load("kvcache:kv_cache_update")
    for regression in REGRESSIONS:
        update = regression.update
        expected = reference_update(*update.arrays(), page_size=update.page_size)
        for mode in ("eager", "jit-donated"):
            assert np.array_equal(bits(call(kernel, update, mode)), bits(expected)), mode
