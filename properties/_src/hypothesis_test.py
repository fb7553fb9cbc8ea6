"""Turn a case (property, tier) and an implementation into a Hypothesis test.

The same test function serves pytest (which calls it and lets Hypothesis report) and
``kvcache-check`` (which calls it, catches the failure and renders the last example seen,
the shrunk one, since Hypothesis replays the minimal failing example last).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import Phase, example, given, settings
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src import placement
from properties._src.buckets import Bucket
from properties._src.cases import Case
from properties._src.constraints import Constraint, admitted
from properties._src.implementations import Implementation, call
from properties._src.regressions import REGRESSIONS
from properties._src.shapes import Shapes
from properties._src.strategies import updates


def property_test(
    case: Case,
    implementation: Implementation,
    *,
    explicit_examples: bool = True,
    observe: Callable[[Update], None] | None = None,
    settings_: settings | None = None,
    buckets: Shapes | None = None,
    constraints: tuple[Constraint, ...] = (),
    compare: str = "bits",
    body: Callable[[Update], None] | None = None,
    mesh: Mesh | None = None,
) -> Callable[[], None]:
    """A zero-argument Hypothesis test checking ``case`` for ``implementation``.

    ``observe`` sees every update before it is run. Without ``explicit_examples`` the
    regression examples are skipped, so a failure must be found and shrunk by search.
    ``buckets`` narrows the static shapes drawn (say, to what a TPU's layout allows);
    a regression example whose shape breaks one of ``constraints`` is skipped too, since the
    implementation cannot take it. With a ``mesh`` every update is placed on it (the buckets
    must split evenly over it). ``compare`` is ``"bits"`` or ``"values"``; ``body`` replaces
    the default check of one update (the runner judges examples its own way).
    """

    def check(update: Update) -> None:
        case.prop.verify(update, call(implementation, update, mesh=mesh), compare)

    def test(update: Update) -> None:
        if observe is not None:
            observe(update)
        (body or check)(update)

    test.__name__ = case.id.replace("-", "_")
    test.__qualname__ = test.__name__
    # Each case gets its own derandomised seed (Hypothesis's hook for parametrised tests), so
    # a ci run's cases explore different shapes instead of repeating one sequence per tier.
    test._hypothesis_internal_add_digest = case.id.encode()  # type: ignore[attr-defined]
    test = given(updates(case.tier, buckets))(test)
    if explicit_examples:
        for regression in REGRESSIONS:
            if (
                case.tier <= regression.tier
                and admitted(Bucket.of(regression.update), constraints)
                and placement.fits(regression.update, mesh)
            ):
                test = example(regression.update)(test)
    if settings_ is not None or not explicit_examples:
        base = settings_ or settings()
        phases = (
            base.phases
            if explicit_examples
            else tuple(p for p in base.phases if p != Phase.explicit)
        )
        test = settings(base, phases=phases)(test)
    return test
