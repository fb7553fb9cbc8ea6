"""The cases: ``CASES`` is the one list that pytest, ``kvcache-check``, the Python API, the
quality gate and the benchmarks all run.

A case owns its whole Hypothesis test (``build``), has every call judged by the judge the
runner hands it, and can reproduce a failure from an example its test observed
(``reproduce``), so the runner needs to know nothing more:

* a property on a tier (``PropertyCase``): each example is one update, called eagerly or
  under ``jax.jit`` with a donated cache (drawn);
* shapes changing between calls, the metamorphic relations and the serving loop
  (``SequenceCase``): each example is a sequence of calls, recorded as ``Step``s.

The runner checks cases in units (``units``): a tier's property cases draw their examples
together and judge the one call each example makes; any other case is a unit of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from oracle.contract import Tier
from properties._src.calling.implementations import Implementation
from properties._src.cases.metamorphic import METAMORPHIC, Metamorphic
from properties._src.cases.property_case import PropertyCase
from properties._src.cases.run_config import PYTEST_RUN, RunConfig, Search
from properties._src.cases.serving_loop import SERVING_LOOP
from properties._src.cases.shape_changes import SHAPE_CHANGES
from properties._src.judging.checks import (
    MESH_PROPERTIES,
    PROPERTIES,
    Property,
    bits,
    differing_rows,
)
from properties._src.judging.steps import Failure

__all__ = [
    "CASES",
    "MESH_CASES",
    "MESH_PROPERTIES",
    "PROPERTIES",
    "Case",
    "Property",
    "PropertyCase",
    "RunConfig",
    "Unit",
    "all_cases",
    "bits",
    "differing_rows",
    "units",
]


class Case(Protocol):
    """What every case provides; ``name`` is the property name reports use."""

    @property
    def name(self) -> str: ...

    @property
    def tier(self) -> Tier: ...

    @property
    def id(self) -> str: ...

    def build(
        self, implementation: Implementation, config: RunConfig = PYTEST_RUN
    ) -> Callable[[], None]:
        """A zero-argument Hypothesis test of ``implementation``, run as ``config`` says."""
        ...

    def reproduce(
        self, implementation: Implementation, example: Any, config: RunConfig = PYTEST_RUN
    ) -> Failure | None:
        """The failure ``example`` (one ``config.observe`` saw) shows when judged again, or
        None."""
        ...


CASES: tuple[Case, ...] = (
    *(PropertyCase(prop, tier) for prop in PROPERTIES for tier in prop.tiers),
    *SHAPE_CHANGES,
    *METAMORPHIC,
    SERVING_LOOP,
)

# Checked only on a mesh (``--mesh``), where the result has a sharding to keep.
MESH_CASES: tuple[Case, ...] = tuple(
    PropertyCase(prop, tier) for prop in MESH_PROPERTIES for tier in prop.tiers
)


def all_cases(on_mesh: bool) -> tuple[Case, ...]:
    """The cases to check: ``CASES``, and on a mesh ``MESH_CASES`` too."""
    return CASES + MESH_CASES if on_mesh else CASES


@dataclass(frozen=True)
class Unit:
    """Cases checked on the same calls: a tier's property cases (each drawn update is called
    once and every property judges the result), or any other case alone."""

    cases: tuple[Case, ...]

    @property
    def id(self) -> str:
        """Its case's id, or its properties' names joined by ``+`` and its tier's."""
        if len(self.cases) == 1:
            return self.cases[0].id
        names = "+".join(case.name for case in self.cases)
        return f"{names}-{self.cases[0].tier.name.lower()}"

    @property
    def shapes(self) -> str:
        """What its calls compile for: ``"pool"`` where its cases draw the pool's shapes (a
        tier's property cases, a metamorphic relation), else its id (a sequence case's shapes
        are its own). A process that has compiled a pool shape reuses it in a later unit: the
        supervisor keeps a lane on units of the shapes it has compiled (for an interpreted
        kernel, compiling a cold pool is most of its general property unit)."""
        if isinstance(self.cases[0], PropertyCase | Metamorphic):
            return "pool"
        return self.id

    def owner(self, prop: str | None) -> int:
        """The index of the case a finding of property ``prop`` belongs to."""
        if len(self.cases) == 1:
            return 0
        return next(i for i, case in enumerate(self.cases) if case.name == prop)

    def searches(self, implementation: Implementation, config: RunConfig) -> tuple[Search, ...]:
        """The unit's Hypothesis searches, in order (a property case's examples and seed
        are its first case's: checked alone, that case draws the same)."""
        first = self.cases[0]
        if isinstance(first, PropertyCase):
            props = tuple(case.prop for case in self.cases if isinstance(case, PropertyCase))
            return first.searches(implementation, config, props if len(props) > 1 else ())
        return (Search(first.build(implementation, config)),)


def units(cases: Sequence[Case] = CASES) -> tuple[Unit, ...]:
    """``cases`` in units, in the order of each unit's first case: the property cases of a
    tier form one; every other case is one alone."""
    grouped: dict[Any, list[Case]] = {}
    for case in cases:
        key = case.tier if isinstance(case, PropertyCase) else case.id
        grouped.setdefault(key, []).append(case)
    return tuple(Unit(tuple(group)) for group in grouped.values())
