"""The Python entry point: check an implementation and get structured results, or assert
that it conforms. ``kvcache-check`` and the pytest plugin are built on these."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from hypothesis import settings

from oracle.contract import Tier, Update
from properties._src.calling.implementations import Implementation, as_implementation
from properties._src.calling.placement import MeshShape, as_mesh_shape
from properties._src.cases.catalog import CASES, Case, all_cases, units
from properties._src.cases.run_config import DEFAULT_SHRINK_SECONDS, RunConfig
from properties._src.domain.constraints import Constraint, in_force
from properties._src.drawing.shapes import FREE_PROFILES, shape_space
from properties._src.judging.comparison import require_comparison
from properties._src.reporting.report import render
from properties._src.reporting.results import STATUSES, CaseResult, CheckResult
from properties._src.running import budgets, profiles
from properties._src.running.runner import run_together

__all__ = [
    "STATUSES",
    "TIERS",
    "CaseResult",
    "CheckResult",
    "all_constraints",
    "assert_conforms",
    "cases_on",
    "check",
    "tiers_of",
]

TIERS: dict[str, Tier] = {"general": Tier.GENERAL, "serving": Tier.SERVING}


def tiers_of(tier: Tier | str | None) -> tuple[Tier, ...]:
    """``None`` for both tiers, else the one named (``"general"``, ``"serving"`` or a ``Tier``)."""
    if tier is None:
        return tuple(TIERS.values())
    if isinstance(tier, Tier) and tier in TIERS.values():
        return (tier,)
    if isinstance(tier, str) and tier in TIERS:
        return (TIERS[tier],)
    raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")


def _settings(profile: str | settings | None, max_examples: int | None) -> settings:
    base = profiles.resolve(profile)
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    return settings(base, max_examples=max_examples or base.max_examples, database=None)


def all_constraints(
    constraints: Iterable[str | Constraint], mesh: MeshShape | None = None
) -> tuple[Constraint, ...]:
    """The constraints given and those ``mesh`` requires (``constraints.in_force``)."""
    return in_force(constraints, mesh.constraints() if mesh else ())


def cases_on(tier: Tier | str | None, cases: Sequence[Case] = CASES) -> tuple[Case, ...]:
    """Those of ``cases`` on ``tier`` (``None``: both tiers), in order."""
    wanted = tiers_of(tier)
    return tuple(case for case in cases if case.tier in wanted)


def check(
    implementation: Implementation | Callable | str,
    *,
    tier: Tier | str | None = None,
    profile: str | settings | None = None,
    max_examples: int | None = None,
    compare: str = "bits",
    constraints: Iterable[str | Constraint] = (),
    cases: Sequence[Case] | None = None,
    before_call: Callable[[Update], None] | None = None,
    mesh: MeshShape | str | None = None,
    seed: int | None = None,
    check_seconds: float | None = None,
    shrink_seconds: float | None = DEFAULT_SHRINK_SECONDS,
) -> CheckResult:
    """Check every property, on ``tier`` or both, against ``implementation``.

    A tier's property cases are checked together (``catalog.units``): each example is drawn
    and called once and every property judges the result, each with its own verdict and
    shrunk counterexample; a case's ``seconds`` run until its verdict was known. The results
    come in the order of ``cases``.

    ``implementation`` is a callable ``f(new_kv_tokens, slice_indices, kv_cache_pages,
    total_update_slices, *, page_size)`` or its ``"MODULE:ATTR"``. ``profile`` is ``"dev"``,
    ``"ci"``, ``"thorough"`` or a Hypothesis ``settings`` (default: ``ci`` under ``CI``, else
    ``dev``); ``max_examples`` overrides its budget. ``constraints`` (``"head_dim%128"``, ...)
    restrict the shapes drawn to what the implementation's layout requires; ``thorough`` also
    draws shapes beyond the pool (``properties._src.drawing.shapes``). ``cases`` narrows
    what is checked to some of ``CASES`` (default: all of them); ``before_call`` sees each
    update just before the implementation is called on it (``kvcache-check``'s supervisor uses
    both). ``mesh`` (``"pages=2,heads=4"``) places every update on a device mesh of those axis
    sizes and draws only shapes that split evenly over it; by default it adds ``MESH_CASES``
    (``sharding-preserved``) to the cases. ``compare`` is ``"bits"`` (every bit, the default) or
    ``"values"`` (any NaN equals any NaN, +0.0 equals -0.0). ``seed`` fixes a non-derandomised
    profile's examples (a failure names its seed). ``check_seconds`` is each case's budget:
    a case whose search spends it stops there, ``incomplete`` (``None``: no budget);
    ``shrink_seconds`` is a shrink's: spent, the smallest example so far is reported,
    ``shrink_stopped`` (``None``: Hypothesis's own 300 s).
    """
    require_comparison(compare)
    budgets.require_seconds("check_seconds", check_seconds)
    budgets.require_seconds("shrink_seconds", shrink_seconds)
    mesh_shape = as_mesh_shape(mesh)
    constraints = all_constraints(constraints, mesh_shape)
    chosen = as_implementation(implementation)
    named = profiles.default_profile() if profile is None else profile
    config = RunConfig(  # the one run every case shares; the mesh asks JAX for its devices
        buckets=shape_space(constraints, free=named in FREE_PROFILES),
        constraints=constraints,
        compare=compare,
        mesh=mesh_shape.build() if mesh_shape else None,
        settings=_settings(profile, max_examples),
        seed=seed,
        before_call=before_call,
        check_seconds=check_seconds,
        shrink_seconds=shrink_seconds,
    )
    mesh_text = str(mesh_shape) if mesh_shape else None
    chosen_cases = cases_on(tier, all_cases(mesh_shape is not None) if cases is None else cases)
    outcomes = {
        outcome.case.id: outcome
        for unit in units(chosen_cases)
        for outcome in run_together(chosen, unit, config)
    }
    results = []
    for case in chosen_cases:  # in the order asked for, whatever the units'
        outcome = outcomes[case.id]
        text = (
            render(
                chosen.name,
                outcome.failure,
                diagnosis=outcome.diagnosis,
                replay=outcome.replay,
                compare=compare,
                mesh=mesh_text,
                notes=outcome.notes,
            )
            if outcome.failure
            else outcome.error and f"{outcome.error}\nreplay: {outcome.replay}"
        )
        results.append(
            CaseResult(
                property=case.name,
                tier=case.tier.name.lower(),
                status=outcome.status,
                examples=outcome.examples,
                seconds=round(outcome.seconds, 3),
                counterexample=text,
                diagnosis=outcome.diagnosis.codes,
                shrink_stopped=outcome.shrink_stopped,
                coverage=outcome.coverage,
            )
        )
    return CheckResult(chosen.name, tuple(results))


def assert_conforms(
    implementation: Implementation | Callable | str,
    *,
    tier: Tier | str | None = None,
    profile: str | settings | None = None,
    max_examples: int | None = None,
    compare: str = "bits",
    constraints: Iterable[str | Constraint] = (),
    cases: Sequence[Case] | None = None,
    mesh: MeshShape | str | None = None,
    seed: int | None = None,
    check_seconds: float | None = None,
    shrink_seconds: float | None = DEFAULT_SHRINK_SECONDS,
) -> None:
    """``check``, raising ``AssertionError`` with every counterexample unless all passed."""
    result = check(
        implementation,
        tier=tier,
        profile=profile,
        max_examples=max_examples,
        compare=compare,
        constraints=constraints,
        cases=cases,
        mesh=mesh,
        seed=seed,
        check_seconds=check_seconds,
        shrink_seconds=shrink_seconds,
    )
    if not result.passed:
        raise AssertionError(
            f"{len(result.not_passed)} of {len(result.results)} checks did not pass\n\n"
            + result.failure_text()
        )
