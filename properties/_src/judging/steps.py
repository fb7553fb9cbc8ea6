"""One call of an implementation inside a case, and a rejected one told.

A ``Step`` is an update and the mode it was called in (``implementations.CALL_MODES``); a
sequence case records its steps as it runs them, so a failure can name the steps before it
and they can be replayed in the same order (state an implementation keeps between calls
included). Every call goes through ``watched_call``, so a supervisor's ``before_call`` sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.calling.implementations import (
    CALL_MODES,
    CALLING_MODES,
    EAGER,
    Implementation,
    call,
)
from properties._src.judging.checks import MATCHES_ORACLE, Property
from properties._src.judging.comparison import VALUE_EQUAL
from properties._src.judging.diagnosis import INTERPRETER_FAULT, NONE, Diagnosis

SOFT_CODES = (*VALUE_EQUAL, INTERPRETER_FAULT)

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
        return ", ".join(filter(None, (self.label, CALLING_MODES[self.mode].phrase)))


@dataclass(frozen=True)
class Failure:
    """A call whose result is rejected: the result (``None`` if the call raised), why, what
    kind of difference it is (``diagnosis``), the explicit example's name if it was one, and
    how it was called.

    ``raised`` is the implementation's own error, when it raised one (a test under pytest
    shows its traceback). ``before`` holds the calls made earlier in the same sequence, in
    order: replaying them first reproduces any state the implementation keeps. ``prop`` names
    the property the failing call breaks. ``detect_races`` says whether the TPU interpreter's race detector was
    on for the failing call (off: the result seen on a re-run after JAX's own fault)."""

    update: Update
    actual: np.ndarray | None
    message: str
    diagnosis: Diagnosis = NONE
    example: str | None = None
    mode: str = EAGER
    before: tuple[Step, ...] = ()
    prop: str = MATCHES_ORACLE.name
    detect_races: bool = True
    raised: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        """Bytes of every update it takes to reproduce: how long its report's snippet is."""
        updates = (self.update, *(step.update for step in self.before))
        return sum(array.nbytes for update in updates for array in update.arrays())

    @property
    def soft(self) -> bool:
        """Only NaN payloads, signed zeros or an interpreter fault: the search goes on."""
        return bool(self.diagnosis.codes) and set(self.diagnosis.codes) <= set(SOFT_CODES)


Judged = Property | tuple[Property, ...] | None
"""What one call is judged by: a property, several (a tier's property cases share each call:
``catalog.units``), or ``None`` (only a raise is a finding)."""


def judged_by(prop: Judged) -> tuple[Property | None, ...]:
    """``prop`` as a tuple of the properties judging one call."""
    return prop if isinstance(prop, tuple) else (prop,)


Judge = Callable[[Step, Judged, Sequence[Step]], np.ndarray]
"""How a case has one step run and judged: ``judge(step, prop, before)`` returns the result
to go on with and raises on a finding. ``prop`` is what judges the call (``Judged``);
``before`` are the sequence's earlier steps. Both judges call ``judge.judged_once``: the
runner's keeps soft findings and raises hard ones; ``judge.strict`` (under pytest) raises on
any."""


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


def watched_call(
    implementation: Implementation,
    step: Step,
    mesh: Mesh | None = None,
    *,
    detect_races: bool = True,
) -> np.ndarray:
    """``call`` for ``step``, after every watcher has seen its update."""
    for watcher in _WATCHERS:
        watcher(step.update)
    return call(implementation, step.update, step.mode, mesh=mesh, detect_races=detect_races)
