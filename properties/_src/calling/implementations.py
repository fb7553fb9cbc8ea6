"""Implementations under test: naming, loading and calling them.

An implementation is any callable
``f(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size)``
returning the updated cache. ``call`` runs it on one ``Update``, in one of two calling
modes: eagerly, or as a serving engine calls it, inside ``jax.jit`` with every array traced
(``page_size`` static) and the cache donated. Off a TPU, every Pallas TPU
kernel it launches runs in the TPU interpreter with out-of-bounds reads raising,
uninitialised memory as NaN and race detection on, without the implementation knowing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jax
import numpy as np
from jax._src import dispatch
from jax._src.pallas.mosaic.interpret import interpret_pallas_call as tpu_interpreter
from jax.experimental.pallas import tpu as pltpu
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.calling import callback_errors, placement
from properties._src.calling.host_callbacks import host_arguments
from properties._src.calling.interpreter_repairs import mended, printed_as_warnings
from properties._src.calling.isolation import clean_slate

INTERPRET_PARAMS = pltpu.InterpretParams(
    detect_races=True, out_of_bounds_reads="raise", uninitialized_memory="nan"
)


EAGER = "eager"
JIT_DONATED = "jit-donated"


class ImplementationError(Exception):
    """An implementation could not be loaded or called as the protocol says."""


class RaceDetected(AssertionError):
    """The TPU interpreter saw two unordered accesses to the same memory, one a write."""


@dataclass(frozen=True)
class Implementation:
    """A named update function under test."""

    name: str
    function: Callable

    def __str__(self) -> str:
        return self.name


def load(spec: str) -> Implementation:
    """``"package.module:attr"`` to an ``Implementation``, or ``ImplementationError`` saying why."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ImplementationError(
            f"{spec!r}: expected MODULE:ATTR, e.g. kvcache:kv_cache_update_jax"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImplementationError(f"{spec!r}: cannot import {module_name!r}: {error}") from None
    function: object = module
    for part in attribute.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise ImplementationError(
                f"{spec!r}: module {module_name!r} has no attribute {attribute!r}"
            )
    if not callable(function):
        raise ImplementationError(
            f"{spec!r}: {attribute!r} is a {type(function).__name__}, not callable"
        )
    return _checked(spec, function)


def _checked(name: str, function: Callable) -> Implementation:
    """``function`` as an ``Implementation``, if its signature fits the protocol."""
    try:
        inspect.signature(function).bind(None, None, None, None, page_size=1)
    except TypeError as error:
        raise ImplementationError(
            f"{name!r}: must accept (new_kv_tokens, slice_indices, kv_cache_pages, "
            f"total_update_slices, *, page_size): {error}"
        ) from None
    except ValueError:  # some callables have no introspectable signature; try them as they are
        pass
    return Implementation(name, function)


BUILTIN = "builtin"  # names the project's own implementations wherever specs are accepted
BUILTIN_SPECS = ("kvcache:kv_cache_update_jax", "kvcache:kv_cache_update", "kvcache:update")


def builtin() -> list[Implementation]:
    """The project's own implementations."""
    return [load(spec) for spec in BUILTIN_SPECS]


def load_all(specs) -> list[Implementation]:
    """Each ``MODULE:ATTR`` loaded, with ``builtin`` standing for the project's own ones."""
    found: list[Implementation] = []
    for spec in specs:
        found += builtin() if spec == BUILTIN else [load(spec)]
    return found


def as_implementation(implementation: Implementation | Callable | str) -> Implementation:
    """An ``Implementation`` from itself, a ``MODULE:ATTR`` string or a callable."""
    if isinstance(implementation, Implementation):
        return implementation
    if isinstance(implementation, str):
        return load(implementation)
    if not callable(implementation):
        raise ImplementationError(f"{implementation!r} is neither callable nor MODULE:ATTR")
    module = getattr(implementation, "__module__", None)
    name = getattr(implementation, "__qualname__", None) or type(implementation).__name__
    return _checked(f"{module}:{name}" if module else name, implementation)


@contextlib.contextmanager
def interpreting(*, detect_races: bool = True) -> Iterator[None]:
    """Run Pallas TPU kernels traced inside in the TPU interpreter, unless on a TPU, with
    the checks of JAX's that fail correct kernels mended (``interpreter_repairs``) and its
    callbacks given host arrays (``host_callbacks``: faster, same bits)."""
    if jax.default_backend() == "tpu":
        yield
        return
    params = dataclasses.replace(INTERPRET_PARAMS, detect_races=detect_races)
    with pltpu.force_tpu_interpret_mode(params), mended(), host_arguments():
        yield


_INTERPRETED: dict[int, Callable] = {}
"""id(function) -> function, for each implementation seen running a Pallas kernel in the TPU
interpreter (keyed by id: callables need not be hashable)."""


def seen_interpreted(implementation: Implementation) -> bool:
    """Whether a call in this process ran a Pallas kernel of ``implementation`` in the TPU
    interpreter. Read off the calls themselves, so a user's or a peer's kernel counts as much
    as this project's."""
    return _INTERPRETED.get(id(implementation.function)) is implementation.function


_JITTED: dict[tuple[int, bool], tuple[Callable, Callable]] = {}
"""(id(function), detect_races) -> (function, its jit): the interpreter's settings are read
while tracing, so a run without race detection gets a program of its own."""


def jitted(implementation: Implementation, *, detect_races: bool = True) -> Callable:
    """``implementation`` inside ``jax.jit``: every array traced, ``page_size`` static, the
    cache (argument 2) donated. One wrapper per implementation, so JAX compiles it once per
    static shape however many examples run."""
    function = implementation.function
    key = (id(function), detect_races)
    kept = _JITTED.get(key)
    if kept is None or kept[0] is not function:  # keyed by id: callables need not be hashable

        def traced(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size):
            return function(
                new_kv_tokens,
                slice_indices,
                kv_cache_pages,
                total_update_slices,
                page_size=page_size,
            )

        kept = (function, jax.jit(traced, static_argnames="page_size", donate_argnums=2))
        _JITTED[key] = kept
    return kept[1]


@dataclass(frozen=True)
class CallingMode:
    """One way ``call`` runs an implementation: how a report says it (``phrase``) and what it
    calls (``program(implementation, detect_races)``)."""

    phrase: str
    program: Callable[[Implementation, bool], Callable]


CALLING_MODES: dict[str, CallingMode] = {
    EAGER: CallingMode("called eagerly", lambda implementation, _: implementation.function),
    JIT_DONATED: CallingMode(
        "under jax.jit with a donated cache",
        lambda implementation, races: jitted(implementation, detect_races=races),
    ),
}
"""Every calling mode, by name; each case draws its calls' modes from these (a new mode joins
by one entry here)."""

CALL_MODES = tuple(CALLING_MODES)
"""The calling modes' names: as it is, or inside ``jax.jit`` with the cache donated."""


def call(
    implementation: Implementation,
    update: Update,
    mode: str = EAGER,
    *,
    mesh: Mesh | None = None,
    detect_races: bool = True,
) -> np.ndarray:
    """Run ``implementation`` on fresh device copies of ``update``, called as ``mode`` says
    (one of ``CALL_MODES``); return the cache on the host.

    With a ``mesh``, the copies are placed on it (``placement``) and the result remembers its
    sharding. Each call starts from clean state (``isolation.clean_slate``): nothing an earlier
    call left behind, an exception included, reaches it. Raises ``RaceDetected`` for a race seen
    by the interpreter: JAX 0.10 flags it in the interpreter's state, newer JAX raises from
    inside the kernel. ``detect_races=False`` turns the race detector off (to tell its own
    faults apart). What the call prints (the interpreter prints some findings, such as a
    semaphore left non-zero at kernel exit) becomes ``InterpreterWarning``s. An error a host
    callback raised (a kernel's DMA in the interpreter) is chained as the raise's cause
    (``callback_errors``), not printed.
    """
    if mode not in CALLING_MODES:
        raise ValueError(f"unknown calling mode {mode!r}; choose one of {', '.join(CALL_MODES)}")
    race = RaceDetected(f"{implementation}: the TPU interpreter detected a race")
    with (
        printed_as_warnings(implementation),
        clean_slate(),
        interpreting(detect_races=detect_races),
        callback_errors.kept() as callback_failures,
    ):
        function = CALLING_MODES[mode].program(implementation, detect_races)
        try:
            result = function(*placement.arguments(update, mesh), page_size=update.page_size)
            result = placement.to_host(jax.block_until_ready(result), mesh)
        except Exception as error:
            # A kernel that failed in the interpreter leaves its error in JAX's runtime
            # tokens, and every later program with effects in this process would raise it
            # again: drop them, so one implementation's failure is not blamed on the next.
            dispatch.runtime_tokens.clear()
            if error.__cause__ is None and callback_failures:
                error.__cause__ = callback_failures[0]  # it names the kernel's line
            if "RACE DETECTED" in str(error):
                raise race from error
            raise
        finally:
            if tpu_interpreter.races is not None:  # made when an interpreted kernel starts
                _INTERPRETED[id(implementation.function)] = implementation.function
        races = tpu_interpreter.races
        if races is not None and races.races_found:
            raise race
    return result
