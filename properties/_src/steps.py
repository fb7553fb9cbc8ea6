"""One call of an implementation inside a case, and a failed one told and replayed.

A ``Step`` is an update and the mode it was called in (``implementations.CALL_MODES``); a
sequence case records its steps as it runs them, so the runner can replay them in the same
order (state an implementation keeps between calls included) and say which step failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.checks import MATCHES_ORACLE
from properties._src.implementations import CALL_MODES, EAGER, MODE_PHRASES, Implementation, call

Check = Callable[[Update, np.ndarray], None]

MODES = st.sampled_from(CALL_MODES)
"""Every call's mode is drawn: a case mixes eager calls and calls under ``jax.jit``, and a
shrunk counterexample is called eagerly unless its failure needs ``jit``."""


@dataclass(frozen=True)
class Step:
    """One call: the update, how it was called, and (in a sequence) which step it is."""

    update: Update
    mode: str = EAGER
    label: str = ""  # e.g. "step 2 of 3, twice the pages: page_size 4, 32 cache rows"

    def __str__(self) -> str:
        return ", ".join(filter(None, (self.label, MODE_PHRASES[self.mode])))


@dataclass(frozen=True)
class Failure:
    """A call whose result is rejected: the result (``None`` if the call raised) and why.

    ``before`` holds the calls made earlier in the same sequence, in order: replaying them
    first reproduces any state the implementation keeps. ``prop`` names the property the
    failing call breaks."""

    update: Update
    actual: np.ndarray | None
    message: str
    mode: str = EAGER
    before: tuple[Step, ...] = ()
    prop: str = MATCHES_ORACLE.name


def describe_error(error: BaseException) -> str:
    """The error's type and message; of a long message (a traceback inside), its last line."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' ... '.join(lines[:1] + lines[-1:]) if len(lines) > 1 else str(error)}"


_WATCHERS: list[Callable[[Update], None]] = []


@contextlib.contextmanager
def watching_calls(before_call: Callable[[Update], None] | None) -> Iterator[None]:
    """Within it, ``before_call`` (if any) sees each step's update just before the
    implementation is called on it, so a supervisor knows which update a crash or a hang
    belongs to."""
    if before_call is not None:
        _WATCHERS.append(before_call)
    try:
        yield
    finally:
        if before_call is not None:
            _WATCHERS.remove(before_call)


def _call(implementation: Implementation, step: Step, mesh: Mesh | None) -> np.ndarray:
    for watcher in _WATCHERS:
        watcher(step.update)
    return call(implementation, step.update, step.mode, mesh=mesh)


def checked(
    implementation: Implementation,
    step: Step,
    check: Check | None = MATCHES_ORACLE.check,
    mesh: Mesh | None = None,
) -> np.ndarray:
    """Run one step (on ``mesh``, if given) and check its result (unless ``check`` is None);
    a failure or an error says which step it was and how it was called."""
    try:
        actual = _call(implementation, step, mesh)
        if check is not None:
            check(step.update, actual)
    except AssertionError as error:
        raise AssertionError(f"{step}: {error}") from None
    except Exception as error:
        error.add_note(f"(the implementation raised this {step})")
        raise
    return actual


def replay(
    implementation: Implementation,
    steps: Sequence[Step],
    check: Check = MATCHES_ORACLE.check,
    prop: str = MATCHES_ORACLE.name,
    mesh: Mesh | None = None,
) -> Failure | None:
    """Run ``steps`` in order; the ``Failure`` of the first that raises or that ``check``
    rejects, else None. Its message starts with the step's label and calling mode."""
    for index, step in enumerate(steps):
        failed = _failure(implementation, step, check, mesh)
        if failed is not None:
            actual, why = failed
            before = tuple(steps[:index])
            return Failure(step.update, actual, f"{step}: {why}", step.mode, before, prop)
    return None


def _failure(
    implementation: Implementation, step: Step, check: Check, mesh: Mesh | None
) -> tuple[np.ndarray | None, str] | None:
    """``(result, why)`` if the step raises or ``check`` rejects its result, else None."""
    try:
        actual = _call(implementation, step, mesh)
    except Exception as error:
        return None, f"the implementation raised {describe_error(error)}"
    try:
        check(step.update, actual)
    except Exception as error:
        return actual, str(error) if isinstance(error, AssertionError) else describe_error(error)
    return None
