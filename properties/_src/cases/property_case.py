"""A property checked on one tier: each example is one update, called in a drawn mode.

The same test function serves pytest (which calls it and lets Hypothesis report) and
``kvcache-check`` (which calls it, catches the failure and reproduces the last steps seen,
the shrunk one among them, since Hypothesis replays the minimal failing example last).

Over a pool of shapes the budget is split evenly between them, one search per shape in pool
order, so every run checks every shape (and so every edge class the pool holds) for every
property: one search over the whole pool leaves a few shapes out of each case, because
Hypothesis spends most of a small budget mutating earlier examples, shape included. A
failure is shrunk within its shape, the first in pool order that fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from hypothesis import Phase, example, given, settings

from oracle.contract import Tier, Update
from properties._src.calling import placement
from properties._src.calling.implementations import CALL_MODES, Implementation
from properties._src.cases.regressions import REGRESSIONS
from properties._src.cases.run_config import PYTEST_RUN, RunConfig, Search
from properties._src.domain.buckets import Bucket
from properties._src.domain.constraints import admitted
from properties._src.drawing.shapes import Shapes, for_tier, shape_space, within_budget
from properties._src.drawing.strategies import updates
from properties._src.judging.checks import Property
from properties._src.judging.judge import replay
from properties._src.judging.steps import MODES, Failure, Step


def examples_per_shape(budget: int, shapes: int) -> int:
    """Each pool shape's share of a property case's ``budget``: even, rounded up, so every
    shape gets at least one example."""
    return math.ceil(budget / max(shapes, 1))


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
        self, implementation: Implementation, config: RunConfig = PYTEST_RUN
    ) -> Callable[[], None]:
        """A zero-argument Hypothesis test checking this case for ``implementation``: its
        ``searches`` in order, the first failure ending it."""
        searches = self.searches(implementation, config)
        if len(searches) == 1:
            return searches[0].test  # one shape, or shapes drawn freely: the search is the test

        def every_shape() -> None:
            seed = getattr(every_shape, "_hypothesis_internal_use_seed", None)  # hypothesis.seed
            for search in searches:
                search.run(seed)

        every_shape.__name__ = every_shape.__qualname__ = self.id.replace("-", "_")
        return every_shape

    def searches(
        self,
        implementation: Implementation,
        config: RunConfig = PYTEST_RUN,
        judged_by: tuple[Property, ...] = (),
    ) -> tuple[Search, ...]:
        """This case's Hypothesis searches, in order: one per shape of a pool (each with its
        share of the budget), or one over shapes drawn freely. Each drawn update is called
        once and the result judged by ``judged_by`` (default: this case's property); the
        runner has a tier's properties judge the same calls (``catalog.units``).

        ``config.observe`` sees every step (update and mode) before it is run; a regression
        example is skipped without ``config.explicit_examples``, and where its shape breaks one
        of ``config.constraints`` or does not split over ``config.mesh``, since the
        implementation cannot take it.
        """
        judged = config.judge_for(implementation)
        observe = config.observe
        props = judged_by or self.prop

        def test(update: Update, mode: str) -> None:
            step = Step(update, mode)
            if observe is not None:
                observe(step)
            judged(step, props, ())

        shapes = for_tier(shape_space() if config.buckets is None else config.buckets, self.tier)
        if not isinstance(shapes, tuple):  # shapes drawn freely: one search over them all
            afforded = within_budget(implementation, shapes, config.constraints)
            return (Search(self._search(test, afforded, config)),)
        base = config.settings_or_profile()
        share = settings(base, max_examples=examples_per_shape(base.max_examples, len(shapes)))
        return tuple(
            Search(
                self._search(
                    test,
                    within_budget(implementation, (shape,), config.constraints),
                    replace(
                        config,
                        settings=share,
                        explicit_examples=config.explicit_examples and i == 0,
                    ),
                    i,
                )
            )
            for i, shape in enumerate(shapes)
        )

    def _search(
        self,
        test: Callable[[Update, str], None],
        shapes: Shapes,
        config: RunConfig,
        index: int = 0,
    ) -> Callable[[], None]:
        """One Hypothesis search of ``test`` over ``shapes``, with the regression examples if
        ``config.explicit_examples``."""
        explicit_examples, settings_ = config.explicit_examples, config.settings

        def search(update: Update, mode: str) -> None:
            test(update, mode)

        search.__name__ = search.__qualname__ = self.id.replace("-", "_")
        # Each case and shape gets its own derandomised seed (Hypothesis's hook for
        # parametrised tests), so a ci run's searches explore different examples.
        digest = f"{self.id}/{index}".encode()
        search._hypothesis_internal_add_digest = digest  # type: ignore[attr-defined]
        found = given(updates(self.tier, shapes), MODES)(search)
        if explicit_examples:
            for regression in REGRESSIONS:
                if (
                    self.tier <= regression.tier
                    and admitted(Bucket.of(regression.update), config.constraints)
                    and placement.fits(regression.update, config.mesh)
                ):
                    for mode in CALL_MODES:
                        found = example(regression.update, mode)(found)
        if settings_ is not None or not explicit_examples:
            base = settings_ or settings()
            phases = (
                base.phases
                if explicit_examples
                else tuple(p for p in base.phases if p != Phase.explicit)
            )
            found = settings(base, phases=phases)(found)
        return found

    def reproduce(
        self, implementation: Implementation, step: Step, config: RunConfig = PYTEST_RUN
    ) -> Failure | None:
        """Judge ``step`` again; its ``Failure`` if the property rejects it."""
        return replay(implementation, [step], self.prop, config.compare, config.mesh)
