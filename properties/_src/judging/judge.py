"""Judge one call: nothing, a hard finding or a soft one, with a diagnosis of what is wrong.

* hard: the result is wrong by value, its shape or dtype is, or the implementation's own
  code raised.
* soft: the only differences are NaN payloads or signed zeros (compared by bits), or JAX's
  TPU interpreter itself faulted and, re-run with race detection off, the result is right.
* none: the only differences are NaN payloads in a dtype whose NaN payloads the backend's own
  scatter does not keep (``comparison.by_value``): the platform's, not the implementation's.

Every call a case makes is judged by ``judged_once``, the one entry (one call, judged by each
property given; ``judged_call`` for one), in the calling mode its step says: through the
runner's judge, which keeps soft findings, or through ``strict``, the judge of a case's test
under pytest, which raises on any; ``replay`` judges a sequence's steps in order and stops at
the first finding.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import numpy as np
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.calling.implementations import Implementation
from properties._src.judging.attribution import attribute
from properties._src.judging.checks import MATCHES_ORACLE, Property
from properties._src.judging.comparison import VALUE_EQUAL, by_value
from properties._src.judging.coverage import note
from properties._src.judging.diagnosis import INTERPRETER_FAULT, Diagnosis, explain, single
from properties._src.judging.steps import (
    Failure,
    Judge,
    Judged,
    Step,
    describe_error,
    judged_by,
    watched_call,
)


def _wrong(prop: Property, update: Update, actual: np.ndarray, compare: str) -> str | None:
    """Why ``prop`` rejects ``actual`` compared as ``compare``, or ``None``."""
    try:
        prop.verify(update, actual, compare)
    except Exception as error:
        return str(error) if isinstance(error, AssertionError) else describe_error(error)
    return None


def _result_failure(
    prop: Property, step: Step, actual: np.ndarray, compare: str, explained: Callable[[], Diagnosis]
) -> Failure | None:
    """The ``Failure`` if ``prop`` rejects ``actual``, with every kind of difference named
    (``explained``: the diagnosis of ``actual``, made once for every property judging it)."""
    update = step.update
    message = _wrong(prop, update, actual, compare)
    if message is None:
        return None
    found = explained().without(by_value(compare, update.kv_cache_pages.dtype))
    if compare == "bits" and _wrong(prop, update, actual, "values") is None:
        return _failure(prop, step, actual, message, found.only(VALUE_EQUAL))  # soft
    wrong = found.without(VALUE_EQUAL)
    if not wrong.codes:  # the property's own reason, where the whole cache tells no more
        wrong = single("values", message)
    return _failure(prop, step, actual, message, wrong + found.only(VALUE_EQUAL))


def _failure(prop, step: Step, actual, why: str, diagnosis) -> Failure:
    """A ``Failure`` of ``step`` whose message starts with the step and its calling mode."""
    return Failure(step.update, actual, f"{step}: {why}", diagnosis, mode=step.mode, prop=prop.name)


def judged_once(
    implementation: Implementation,
    props: Sequence[Property | None],
    step: Step,
    compare: str = "bits",
    mesh: Mesh | None = None,
) -> tuple[np.ndarray | None, tuple[Failure | None, ...]]:
    """Run ``step`` once (on ``mesh``, if given, in the step's calling mode) and judge the one
    result by each of ``props``: the result to go on with (``None`` if every try raised) and,
    for each property in order, its ``Failure`` or ``None``. A raise is every property's
    finding; a ``None`` property judges only a raise (a metamorphic relation compares the
    results itself). One call serves every property: a property case's tier judges its three
    properties on it."""
    note(step.update)
    try:
        actual = watched_call(implementation, step, mesh)
    except Exception as error:
        raised = attribute(error)
        if raised.interpreter_fault:
            return _interpreter_fault(implementation, props, step, compare, str(raised), mesh)
        failure = _failure(
            MATCHES_ORACLE,
            step,
            None,
            f"the implementation raised {describe_error(error)}",
            single("raised", f"The implementation raised {raised}."),
        )
        failure = dataclasses.replace(failure, raised=error)
        return None, tuple(_as_property(failure, prop) for prop in props)
    explained = functools.cache(lambda: explain(step.update, actual))

    @functools.cache
    def verdict(prop: Property) -> Failure | None:
        if prop.implied_by_oracle and MATCHES_ORACLE in props and verdict(MATCHES_ORACLE) is None:
            return None
        return _result_failure(prop, step, actual, compare, explained)

    return actual, tuple(None if prop is None else verdict(prop) for prop in props)


def judged_call(
    implementation: Implementation,
    prop: Property | None,
    step: Step,
    compare: str = "bits",
    mesh: Mesh | None = None,
) -> tuple[np.ndarray | None, Failure | None]:
    """``judged_once`` for one property: the result to go on with and the ``Failure`` if
    ``prop`` rejects the result or the call raised."""
    actual, (failure,) = judged_once(implementation, (prop,), step, compare, mesh)
    return actual, failure


def _as_property(failure: Failure, prop: Property | None) -> Failure:
    """``failure`` as ``prop``'s (a raise or a fault is found by whichever property judges)."""
    return dataclasses.replace(failure, prop=(prop or MATCHES_ORACLE).name)


def strict(
    implementation: Implementation, compare: str = "bits", mesh: Mesh | None = None
) -> Judge:
    """The judge that raises on any finding (``judged_call``), soft ones included, with the
    implementation's own error as the cause when it raised: a case's test under pytest."""

    def judge(step: Step, prop: Judged, before: Sequence[Step] = ()) -> np.ndarray:
        del before  # a failure's message names the step itself
        actual, failures = judged_once(implementation, judged_by(prop), step, compare, mesh)
        for failure in failures:
            if failure is not None:
                raise AssertionError(failure.message) from failure.raised
        assert actual is not None  # a call without a finding has a result
        return actual

    return judge


def _interpreter_fault(
    implementation, props: Sequence[Property | None], step: Step, compare, raised: str, mesh
) -> tuple[np.ndarray | None, tuple[Failure, ...]]:
    """JAX's interpreter faulted: each property's verdict is what the same call gives without
    races (one re-run for them all)."""
    fault = f"JAX's TPU interpreter itself raised {raised} (its own code, not the implementation's)"
    headline = "JAX's TPU interpreter faulted (not the implementation)"
    try:
        actual = watched_call(implementation, step, mesh, detect_races=False)
    except Exception as error:
        again = attribute(error)
        sentence = f"{fault}; with race detection off it raises {again} as well."
        faulted = single(INTERPRETER_FAULT, sentence)
        return None, tuple(
            _failure(p or MATCHES_ORACLE, step, None, headline, faulted) for p in props
        )

    explained = functools.cache(lambda: explain(step.update, actual))

    def verdict(prop: Property) -> Failure:
        wrong = _result_failure(prop, step, actual, compare, explained)
        if wrong is None:
            sentence = f"{fault}; with race detection off the result matches the oracle."
            return _failure(prop, step, None, headline, single(INTERPRETER_FAULT, sentence))
        note = single(INTERPRETER_FAULT, f"{fault}; with race detection off the result differs.")
        # The wrong result was seen with race detection off: its snippet runs that way too.
        return dataclasses.replace(wrong, diagnosis=note + wrong.diagnosis, detect_races=False)

    return actual, tuple(verdict(p or MATCHES_ORACLE) for p in props)


def replay(
    implementation: Implementation,
    steps: Sequence[Step],
    prop: Property = MATCHES_ORACLE,
    compare: str = "bits",
    mesh: Mesh | None = None,
) -> Failure | None:
    """Judge ``steps`` in order; the ``Failure`` of the first with a finding (soft ones
    included), with the steps before it, else None."""
    for index, step in enumerate(steps):
        _, failure = judged_call(implementation, prop, step, compare, mesh)
        if failure is not None:
            return dataclasses.replace(failure, before=tuple(steps[:index]))
    return None
