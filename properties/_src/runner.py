"""Run one case (a property on a tier) for one implementation, and keep what a report needs.

``property_test`` raises whatever Hypothesis raises; this module turns that into a verdict.
The failing update is found again among the last updates observed (Hypothesis replays the
shrunk example last) by re-running them, so the counterexample, the result and the message
always belong together.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import settings
from hypothesis.reporting import with_reporter
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.cases import Case, Property
from properties._src.hypothesis_test import property_test
from properties._src.implementations import Implementation, call
from properties._src.shapes import Shapes

KEPT_UPDATES = 16  # how far back to look for the failing update


@dataclass(frozen=True)
class Failure:
    """An update the property rejects: the result (``None`` if the call raised) and why."""

    update: Update
    actual: np.ndarray | None
    message: str


@dataclass(frozen=True)
class Outcome:
    """The verdict of one case, with the failure or error behind it."""

    case: Case
    status: str  # "passed", "failed" (with ``failure``) or "error" (with ``error``)
    examples: int
    seconds: float
    failure: Failure | None = None
    error: str | None = None


def _describe(error: BaseException) -> str:
    """The error's type and message; of a long message (a traceback inside), its last line."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' ... '.join(lines[:1] + lines[-1:]) if len(lines) > 1 else str(error)}"


def reproduce(
    implementation: Implementation, prop: Property, update: Update, mesh: Mesh | None = None
) -> Failure | None:
    """Run ``update`` again; the ``Failure`` if ``prop`` rejects it (a raise counts), else None."""
    try:
        actual = call(implementation, update, mesh=mesh)
    except Exception as error:
        return Failure(update, None, f"the implementation raised {_describe(error)}")
    try:
        prop.check(update, actual)
    except Exception as error:
        message = str(error) if isinstance(error, AssertionError) else _describe(error)
        return Failure(update, actual, message)
    return None


def run(
    implementation: Implementation,
    case: Case,
    settings_: settings,
    *,
    explicit_examples: bool = True,
    buckets: Shapes | None = None,
    before_call: Callable[[Update], None] | None = None,
    mesh: Mesh | None = None,
) -> Outcome:
    """Check ``case``: "failed" with a reproduced counterexample, "error" when
    Hypothesis stopped for another reason (a health check, a failure that does not recur).
    ``before_call`` sees every update just before the implementation runs on it (replays of
    a failure included), so a supervisor knows which update a crash or a hang belongs to.
    With a ``mesh``, every update is placed on it."""
    recent: deque[Update] = deque(maxlen=KEPT_UPDATES)
    examples = 0

    def observe(update: Update) -> None:
        nonlocal examples
        examples += 1
        recent.append(update)
        if before_call is not None:
            before_call(update)

    def replay(update: Update) -> Failure | None:
        if before_call is not None:
            before_call(update)
        return reproduce(implementation, case.prop, update, mesh)

    test = property_test(
        case,
        implementation,
        explicit_examples=explicit_examples,
        observe=observe,
        settings_=settings(settings_, report_multiple_bugs=False),
        buckets=buckets,
        mesh=mesh,
    )
    start = time.perf_counter()
    try:
        with with_reporter(lambda _: None):  # the report renders the counterexample itself
            test()
    except Exception as error:
        failure = next((f for u in reversed(recent) if (f := replay(u))), None)
        status, message = ("failed", None) if failure else ("error", _describe(error))
    else:
        status, failure, message = "passed", None, None
    seconds = time.perf_counter() - start
    return Outcome(case, status, examples, seconds, failure, message)
