"""Run one case for one implementation, and keep what a report needs.

A case's test raises whatever Hypothesis raises; this module turns that into a verdict.
The failing example (an update, or a sequence of steps) is found again among the last
examples observed (Hypothesis replays the shrunk example last) by having the case reproduce
them, so the counterexample, the result and the message always belong together.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis.reporting import with_reporter
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.buckets import BUCKETS, Bucket
from properties._src.cases import Case
from properties._src.implementations import Implementation
from properties._src.steps import Failure, describe_error, watching_calls

KEPT_EXAMPLES = 16  # how far back to look for the failing example


@dataclass(frozen=True)
class Outcome:
    """The verdict of one case, with the failure or error behind it."""

    case: Case
    status: str  # "passed", "failed" (with ``failure``) or "error" (with ``error``)
    examples: int
    seconds: float
    failure: Failure | None = None
    error: str | None = None


def run(
    implementation: Implementation,
    case: Case,
    settings_: settings,
    *,
    explicit_examples: bool = True,
    buckets: tuple[Bucket, ...] = BUCKETS,
    before_call: Callable[[Update], None] | None = None,
    mesh: Mesh | None = None,
) -> Outcome:
    """Check ``case``: "failed" with a reproduced counterexample, "error" when
    Hypothesis stopped for another reason (a health check, a failure that does not recur).
    ``before_call`` sees every update just before the implementation runs on it (replays of
    a failure included), so a supervisor knows which update a crash or a hang belongs to.
    With a ``mesh``, every update is placed on it."""
    recent: deque[Any] = deque(maxlen=KEPT_EXAMPLES)
    examples = 0

    def observe(example: Any) -> None:
        nonlocal examples
        examples += 1
        recent.append(example)

    test = case.build(
        implementation,
        explicit_examples=explicit_examples,
        observe=observe,
        settings_=settings(settings_, report_multiple_bugs=False),
        buckets=buckets,
        mesh=mesh,
    )
    start = time.perf_counter()
    try:
        with with_reporter(lambda _: None), watching_calls(before_call):
            test()  # the report renders the counterexample itself
    except Exception as error:
        with watching_calls(before_call):
            failure = next(
                (f for e in reversed(recent) if (f := case.reproduce(implementation, e, mesh))),
                None,
            )
        status, message = ("failed", None) if failure else ("error", describe_error(error))
    else:
        status, failure, message = "passed", None, None
    seconds = time.perf_counter() - start
    return Outcome(case, status, examples, seconds, failure, message)
