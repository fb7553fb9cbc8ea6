"""The quality gate: the ``ci`` profile, by search alone, rejects every deliberately broken
implementation. Its other half, that the same profile accepts the project's own, is
``tests/conformance/test_properties.py`` under CI (which runs it with the ``ci`` profile)."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from properties._src.calling.implementations import load
from properties._src.calling.placement import MeshShape
from properties._src.cases.catalog import CASES, MESH_CASES, Case, all_cases
from properties._src.cases.run_config import RunConfig
from properties._src.drawing.shapes import shape_space
from properties._src.running.api import all_constraints
from properties._src.running.profiles import PROFILES
from properties._src.running.runner import Outcome, run
from properties.known_bad import KNOWN_BAD, MUTANTS, REACH, SHARDED

# The ci budget and seed; a verdict needs no shrinking.
GATE = settings(PROFILES["ci"], phases=(Phase.generate,))
MESH = MeshShape(pages=2, heads=4)


def in_gate_order(on_mesh: bool) -> tuple[Case, ...]:
    """Every case, the cheapest to reject a mutant first: ``matches-oracle`` on the general tier
    (most bugs show there), then on a mesh the cases only a mesh has (a mutant whose values are
    right is rejected there, not after every other case has passed), then the rest in order."""
    first, *rest = CASES
    return (first, *(MESH_CASES if on_mesh else ()), *rest)


def outcomes(
    spec: str,
    *,
    explicit_examples: bool,
    stop_at_failure: bool,
    mesh: MeshShape | None = None,
    only: str | None = None,
) -> list[Outcome]:
    """Every (property, tier) for ``spec`` in turn (``only``: the case of that id alone),
    stopping at the first rejection if asked; with a ``mesh``, every update on it and its
    cases too."""
    implementation, found = load(spec), []
    device_mesh = mesh.build() if mesh else None
    buckets = shape_space(all_constraints((), mesh))
    for case in in_gate_order(mesh is not None):
        if only is not None and case.id != only:
            continue
        found.append(
            run(
                implementation,
                case,
                RunConfig(
                    settings=GATE,
                    explicit_examples=explicit_examples,
                    buckets=buckets,
                    mesh=device_mesh,
                ),
            )
        )
        if stop_at_failure and found[-1].status != "passed":
            break
    return found


@pytest.mark.parametrize("spec", KNOWN_BAD)
def test_ci_profile_rejects_the_mutant_by_search(spec):
    """A mutant that only some cases show runs every case before the first that rejects it,
    each case's whole ci budget: up to a minute for the few that only a late case rejects."""
    last = outcomes(spec, explicit_examples=False, stop_at_failure=True)[-1]
    assert last.status == "failed", f"{spec} survived every property on both tiers"
    assert last.failure is not None and last.failure.message


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
    (outcome,) = outcomes(spec, explicit_examples=False, stop_at_failure=True, only=case_id)
    assert outcome.status == "failed", f"{spec} survived {case_id}"
    assert outcome.failure is not None and outcome.failure.message


@pytest.mark.parametrize("spec", SHARDED)
def test_ci_profile_on_a_mesh_rejects_the_sharded_mutant_by_search(spec):
    """On 8 virtual devices; a mutant whose values are right (``gathers_the_cache``) is rejected
    by the mesh's own case, second in ``in_gate_order``: about 25 s, not the 200 s of every case."""
    last = outcomes(spec, explicit_examples=False, stop_at_failure=True, mesh=MESH)[-1]
    assert last.status == "failed", f"{spec} survived every property on {MESH}"
    assert last.failure is not None and last.failure.message


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


@pytest.mark.parametrize("on_mesh", [False, True])
def test_the_gate_order_holds_every_case_once(on_mesh):
    ordered = [case.id for case in in_gate_order(on_mesh)]
    assert sorted(ordered) == sorted(case.id for case in all_cases(on_mesh))
