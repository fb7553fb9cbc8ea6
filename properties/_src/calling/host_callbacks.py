"""The TPU interpreter's callbacks called with their host arrays as they are.

JAX's TPU interpreter runs a kernel as a program of ``io_callback``s: every load, store, DMA and
semaphore operation is a call back into Python (about 60 for one grid step of the project's
kernel). For each, JAX's ``io_callback_impl`` first ``device_put``s every argument onto the
CPU device, and the interpreter then turns each back into a host value (``int(...)``,
``np.array(...)``). That round trip was most of an interpreted call's time: cProfile over 40
examples of ``matches-oracle-serving`` put 8.1 s of 21 s in ``device_put`` alone, against 5.2 s
in the interpreter's own work; a call on the pool's first shape took 97 ms with it and 21 ms
without, bit for bit the same result (``docs/interpreter.md``).

``host_arguments()`` hands the interpreter's own callbacks (those defined in
``jax._src.pallas.mosaic.interpret``) copies of their arguments as NumPy arrays instead, which
is what they read them as; every other ``io_callback`` (an implementation's own) goes through
JAX as before. A callback's exception is logged and raised as JAX does
(``callback_errors`` reads the log). A JAX whose ``io_callback_impl`` is elsewhere is left as
it is.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
from jax._src import callback as jax_callback
from jax._src import tree_util

INTERPRETER = "jax._src.pallas.mosaic.interpret"
_IO_CALLBACK_IMPL = getattr(jax_callback, "io_callback_impl", None)


def _interpreters(flat_callback: Any) -> bool:
    """Whether ``flat_callback`` (JAX's ``_FlatCallback``) calls the TPU interpreter."""
    function = getattr(flat_callback, "callback_func", None)
    while isinstance(function, functools.partial):
        function = function.func
    return getattr(function, "__module__", "").startswith(INTERPRETER)


def _io_callback_impl(*args: Any, callback: Any, **params: Any) -> Any:
    """JAX's ``io_callback_impl``, without the ``device_put`` for the interpreter's own."""
    if not _interpreters(callback):
        return _IO_CALLBACK_IMPL(*args, callback=callback, **params)  # type: ignore[misc]
    host = tuple(np.array(arg) for arg in args)  # copies: the runtime's buffers are not theirs
    try:
        return tree_util.tree_map(np.asarray, callback(*host))
    except BaseException:
        jax_callback.logger.exception("jax.io_callback failed")  # as JAX does: callback_errors
        raise


@contextlib.contextmanager
def host_arguments() -> Iterator[None]:
    """Run the body with the interpreter's callbacks given host arrays."""
    if _IO_CALLBACK_IMPL is None:
        yield
        return
    jax_callback.io_callback_impl = _io_callback_impl
    try:
        yield
    finally:
        jax_callback.io_callback_impl = _IO_CALLBACK_IMPL
