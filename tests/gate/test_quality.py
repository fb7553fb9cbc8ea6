"""The quality gate: the ``ci`` profile, by search alone, rejects every deliberately broken
implementation. Its other half, that the same profile accepts the project's own, is
``tests/conformance/test_properties.py`` under CI (which runs it with the ``ci`` profile)."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from properties._src.calling.implementations import load
from properties._src.calling.placement import MeshShape
from properties._src.cases.catalog import all_cases, units
from properties._src.cases.run_config import RunConfig
from properties._src.drawing.shapes import shape_space
from properties._src.running.api import all_constraints
from properties._src.running.profiles import PROFILES
from properties._src.running.runner import Outcome, run, run_together
from properties.known_bad import KNOWN_BAD, MUTANTS, REACH, SHARDED

# The ci budget and seed; a verdict needs no shrinking.
GATE = settings(PROFILES["ci"], phases=(Phase.generate,))
MESH = MeshShape(pages=2, heads=4)


def outcomes(spec: str, *, mesh: MeshShape | None = None, only: str | None = None) -> list[Outcome]:
    """Every unit for ``spec`` in turn, by search alone (``only``: the case of that id alone),
    until the first rejection (a unit's search too); with a ``mesh``, every update on it and
    its cases too. The general tier's properties come first (most bugs show there), judged on
    the same calls, the mesh's own among them (``units``)."""
    implementation, found = load(spec), []
    device_mesh = mesh.build() if mesh else None
    config = RunConfig(
        settings=GATE,
        explicit_examples=False,
        buckets=shape_space(all_constraints((), mesh)),
        mesh=device_mesh,
        stop_at_first_failure=True,
    )
    cases = [c for c in all_cases(mesh is not None) if only is None or c.id == only]
    for unit in units(cases):
        found.extend(run_together(implementation, unit, config))
        if rejection(found) is not None:
            break
    return found


def rejection(found: list[Outcome]) -> Outcome | None:
    """The first failed outcome, if any."""
    return next((o for o in found if o.status == "failed"), None)


@pytest.mark.parametrize("spec", KNOWN_BAD)
def test_ci_profile_rejects_the_mutant_by_search(spec):
    """A mutant that only some cases show runs every unit before the first that rejects it,
    each unit's whole ci budget: up to a minute for the few that only a late unit rejects."""
    failed = rejection(outcomes(spec))
    assert failed is not None, f"{spec} survived every property on both tiers"
    assert failed.failure is not None and failed.failure.message


@pytest.mark.parametrize(("spec", "case_id"), REACH.items())
def test_ci_profile_rejects_what_the_old_pool_missed_by_search(spec, case_id):
    """Each mutant of ``known_bad.reach`` breaks only where the old pool never drew (issue
    21); it dies under ``ci`` by search in the case ``REACH`` names, the cheapest that kills
    it, run alone: ahead of it in the catalog are cases that pass it (a sequence-only bug
    would pay for every property case first). Those a property or metamorphic case kills take
    20 to 45 s on a loaded 2-core machine: the case compiles each pool shape it draws until it
    reaches one of the mutant's class (an E4M3 format other than e4m3fn, a narrow table, over
    512 columns, a page past 2 MiB); the serving loop kills the sequence-only ones in a second
    or two."""
    (outcome,) = outcomes(spec, only=case_id)
    assert outcome.status == "failed", f"{spec} survived {case_id}"
    assert outcome.failure is not None and outcome.failure.message


@pytest.mark.parametrize("spec", SHARDED)
def test_ci_profile_on_a_mesh_rejects_the_sharded_mutant_by_search(spec):
    """On 8 virtual devices; a mutant whose values are right (``gathers_the_cache``) is rejected
    by the mesh's own case, judged on the first unit's calls (the general tier's properties)."""
    failed = rejection(outcomes(spec, mesh=MESH))
    assert failed is not None, f"{spec} survived every property on {MESH}"
    assert failed.failure is not None and failed.failure.message


@pytest.mark.parametrize("spec", SHARDED)
def test_the_sharded_mutants_match_the_oracle_on_one_device(spec):
    """Only a mesh tells them apart, which is why they are not in KNOWN_BAD."""
    budget = settings(GATE, max_examples=10)
    for case in all_cases(False):
        if case.name == "matches-oracle":
            outcome = run(load(spec), case, RunConfig(settings=budget, explicit_examples=False))
            assert outcome.status == "passed", (case.id, outcome.failure)


def test_mutants_are_many_and_distinct():
    specs = MUTANTS + tuple(REACH)
    functions = [load(spec).function for spec in specs]
    assert len(MUTANTS) >= 30 and len(REACH) >= 7
    assert len({id(f) for f in functions}) == len(specs)
