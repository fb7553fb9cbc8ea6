"""The Python entry point: check an implementation and get structured results, or assert
that it conforms. ``kvcache-check`` and the pytest plugin are built on these."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from hypothesis import settings

from oracle.contract import Tier
from properties._src import profiles
from properties._src.cases import CASES
from properties._src.constraints import Constraint, parse_all
from properties._src.implementations import Implementation, as_implementation
from properties._src.report import render
from properties._src.runner import run
from properties._src.shapes import FREE_PROFILES, pool_for, shape_space

TIERS: dict[str, Tier] = {"general": Tier.GENERAL, "serving": Tier.SERVING}
COMPARISONS = ("bits",)  # how a result is compared with the oracle
STATUSES = ("passed", "failed", "error")


@dataclass(frozen=True)
class CaseResult:
    """The verdict of one property on one tier; ``counterexample`` is the rendered failure
    (or the error) for any status but ``passed``."""

    property: str
    tier: str
    status: str
    examples: int
    seconds: float
    counterexample: str | None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    """Every case checked for one implementation."""

    name: str
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.status == "passed" for r in self.results)

    @property
    def not_passed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if r.status != "passed")

    def as_dict(self) -> dict:
        """What ``kvcache-check --json`` writes for this implementation."""
        return {"name": self.name, "results": [r.as_dict() for r in self.results]}


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


def _require_supported(compare: str) -> None:
    if compare not in COMPARISONS:
        raise ValueError(f"unknown comparison {compare!r}; choose one of {', '.join(COMPARISONS)}")


def check(
    implementation: Implementation | Callable | str,
    *,
    tier: Tier | str | None = None,
    profile: str | settings | None = None,
    max_examples: int | None = None,
    compare: str = "bits",
    constraints: Iterable[str | Constraint] = (),
) -> CheckResult:
    """Check every property, on ``tier`` or both, against ``implementation``.

    ``implementation`` is a callable ``f(new_kv_tokens, slice_indices, kv_cache_pages,
    total_update_slices, *, page_size)`` or its ``"MODULE:ATTR"``. ``profile`` is ``"dev"``,
    ``"ci"``, ``"thorough"`` or a Hypothesis ``settings`` (default: ``ci`` under ``CI``, else
    ``dev``); ``max_examples`` overrides its budget. ``constraints`` (``"head_dim%128"``, ...)
    restrict the shapes drawn to what the implementation's layout requires. ``thorough``
    also draws shapes beyond the pool (``properties._src.shapes``).
    """
    _require_supported(compare)
    named = profiles.default_profile() if profile is None else profile
    chosen = as_implementation(implementation)
    buckets = shape_space(
        parse_all(constraints), free=named in FREE_PROFILES, pool=pool_for(chosen.name)
    )
    budget = _settings(profile, max_examples)
    wanted = tiers_of(tier)
    results = []
    for case in CASES:
        if case.tier not in wanted:
            continue
        outcome = run(chosen, case, budget, buckets=buckets)
        text = render(chosen.name, case.prop.name, outcome.failure) if outcome.failure else None
        results.append(
            CaseResult(
                property=case.prop.name,
                tier=case.tier.name.lower(),
                status=outcome.status,
                examples=outcome.examples,
                seconds=round(outcome.seconds, 3),
                counterexample=text or outcome.error,
            )
        )
    return CheckResult(chosen.name, tuple(results))


def failure_text(result: CheckResult) -> str:
    """Each case that did not pass, with its counterexample, for a person."""
    return "\n\n".join(
        f"=== {result.name}: {r.property} ({r.tier}) {r.status} ===\n{r.counterexample}"
        for r in result.not_passed
    )


def assert_conforms(
    implementation: Implementation | Callable | str,
    *,
    tier: Tier | str | None = None,
    profile: str | settings | None = None,
    max_examples: int | None = None,
    compare: str = "bits",
    constraints: Iterable[str | Constraint] = (),
) -> None:
    """``check``, raising ``AssertionError`` with every counterexample unless all passed."""
    result = check(
        implementation,
        tier=tier,
        profile=profile,
        max_examples=max_examples,
        compare=compare,
        constraints=constraints,
    )
    if not result.passed:
        raise AssertionError(
            f"{len(result.not_passed)} of {len(result.results)} checks did not pass\n\n"
            + failure_text(result)
        )
