"""A property checked on one tier: each example is one update, called in a drawn mode.

The same test function serves pytest (which calls it and lets Hypothesis report) and
``kvcache-check`` (which calls it, catches the failure and reproduces the last steps seen,
the shrunk one among them, since Hypothesis replays the minimal failing example last).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import Phase, example, given, settings
from jax.sharding import Mesh

from oracle.contract import Tier, Update
from properties._src import placement
from properties._src.buckets import Bucket
from properties._src.checks import Property
from properties._src.constraints import Constraint, admitted
from properties._src.implementations import CALL_MODES, Implementation
from properties._src.judging import replay
from properties._src.regressions import REGRESSIONS
from properties._src.shapes import Shapes
from properties._src.steps import MODES, Failure, Judge, Step, strict
from properties._src.strategies import updates


@dataclass(frozen=True)
class PropertyCase:
    """``prop`` on ``tier``: each drawn update is called eagerly or under ``jax.jit`` with a
    donated cache (the mode is drawn too; the regressions run in both), and the result must
    have the property."""

    prop: Property
    tier: Tier

    @property
    def name(self) -> str:
        return self.prop.name

    @property
    def id(self) -> str:
        """``property-tier``, as pytest ids and reports name it."""
        return f"{self.name}-{self.tier.name.lower()}"

    def build(
        self,
        implementation: Implementation,
        *,
        settings_: settings | None = None,
        explicit_examples: bool = True,
        observe: Callable[[Step], None] | None = None,
        buckets: Shapes | None = None,
        constraints: tuple[Constraint, ...] = (),
        compare: str = "bits",
        mesh: Mesh | None = None,
        judge: Judge | None = None,
    ) -> Callable[[], None]:
        """A zero-argument Hypothesis test checking this case for ``implementation``.

        ``observe`` sees every step (update and mode) before it is run. Without
        ``explicit_examples`` the regression examples are skipped, so a failure must be found
        and shrunk by search. ``buckets`` narrows the static shapes drawn (say, to what a TPU's
        layout allows); a regression example whose shape breaks one of ``constraints`` is
        skipped too, since the implementation cannot take it. With a ``mesh`` every update is
        placed on it (the buckets must split evenly over it). ``judge`` runs and judges each
        step (the runner's keeps soft findings); by default any finding, compared as
        ``compare`` says, fails the example.
        """
        judged = judge or strict(implementation, compare, mesh)

        def test(update: Update, mode: str) -> None:
            step = Step(update, mode)
            if observe is not None:
                observe(step)
            judged(step, self.prop, ())

        test.__name__ = self.id.replace("-", "_")
        test.__qualname__ = test.__name__
        # Each case gets its own derandomised seed (Hypothesis's hook for parametrised tests), so
        # a ci run's cases explore different shapes instead of repeating one sequence per tier.
        test._hypothesis_internal_add_digest = self.id.encode()  # type: ignore[attr-defined]
        test = given(updates(self.tier, buckets), MODES)(test)
        if explicit_examples:
            for regression in REGRESSIONS:
                if (
                    self.tier <= regression.tier
                    and admitted(Bucket.of(regression.update), constraints)
                    and placement.fits(regression.update, mesh)
                ):
                    for mode in CALL_MODES:
                        test = example(regression.update, mode)(test)
        if settings_ is not None or not explicit_examples:
            base = settings_ or settings()
            phases = (
                base.phases
                if explicit_examples
                else tuple(p for p in base.phases if p != Phase.explicit)
            )
            test = settings(base, phases=phases)(test)
        return test

    def reproduce(
        self,
        implementation: Implementation,
        step: Step,
        mesh: Mesh | None = None,
        compare: str = "bits",
    ) -> Failure | None:
        """Judge ``step`` again; its ``Failure`` if the property rejects it."""
        return replay(implementation, [step], self.prop, compare, mesh)
