"""One run of a case, as one frozen value: what ``check()`` built from its options once, handed
to ``Case.build`` and ``Case.reproduce`` (and to the runner) instead of a keyword each.

The default, ``RunConfig()``, is a run under pytest: the loaded Hypothesis profile, the
regression examples, the pool of shapes, comparison by bits, no mesh, and every finding
raised at once (``judge.strict``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis
from jax.sharding import Mesh

from oracle.contract import Update
from properties._src.calling.implementations import Implementation
from properties._src.domain.constraints import Constraint
from properties._src.drawing.shapes import Shapes
from properties._src.judging.judge import strict
from properties._src.judging.steps import Judge

# A shrink's seconds unless told (``--shrink-seconds``): enough to shrink the known-bad targets
# to their smallest examples, little enough for a failing implementation's whole check to
# take a minute or so (see docs/benchmarks.md).
DEFAULT_SHRINK_SECONDS = 20.0


@dataclass(frozen=True)
class RunConfig:
    """How one case is run.

    * ``settings``: the Hypothesis settings (``None``: the loaded profile's).
    * ``explicit_examples``: whether the regression examples run first; without them a failure
      must be found and shrunk by search.
    * ``buckets``: the static shapes drawn, a pool or a strategy (``None``: ``shape_space()``).
    * ``constraints``: what the implementation's layout requires of a shape; a regression
      example that breaks one is skipped, and a sequence case's pool is fitted to them.
    * ``compare``: ``"bits"`` or ``"values"`` (``comparison.COMPARISONS``).
    * ``mesh``: the device mesh every update is placed on, or ``None``.
    * ``seed``: the seed of a non-derandomised search (the runner's; ``None``: drawn).
    * ``before_call``: sees every update just before the implementation runs on it.
    * ``observe``: sees each example (a ``Step``, or a sequence's list of them) before it runs.
    * ``judge``: runs and judges each step (``None``: ``judge.strict``, raising on any finding).
    * ``check_seconds``: the runner's budget for the case's search (``None``: none); spent, the
      case is ``incomplete``.
    * ``shrink_seconds``: the runner's budget for a shrink (``None``: Hypothesis's 300 s);
      spent, the smallest example so far is reported, marked ``shrink_stopped``.
    * ``stop_at_first_failure``: the runner ends a unit's search at its first failure; its
      cases not settled by then are ``incomplete`` (for a verdict that needs one rejection,
      such as the quality gate's, not a report of every property).
    """

    settings: hypothesis.settings | None = None
    explicit_examples: bool = True
    buckets: Shapes | None = None
    constraints: tuple[Constraint, ...] = ()
    compare: str = "bits"
    mesh: Mesh | None = None
    seed: int | None = None
    before_call: Callable[[Update], None] | None = None
    observe: Callable[[Any], None] | None = None
    judge: Judge | None = None
    check_seconds: float | None = None
    shrink_seconds: float | None = DEFAULT_SHRINK_SECONDS
    stop_at_first_failure: bool = False

    def judge_for(self, implementation: Implementation) -> Judge:
        """The judge of this run's steps: ``judge``, or one raising on any finding."""
        return self.judge or strict(implementation, self.compare, self.mesh)

    def settings_or_profile(self) -> hypothesis.settings:
        """``settings``, or the loaded profile's."""
        return self.settings or hypothesis.settings()


@dataclass(frozen=True)
class Search:
    """One Hypothesis search of a case (``test``)."""

    test: Callable[[], None]

    def run(self, seed: int | None = None) -> None:
        """Run the search (with ``seed``, if given)."""
        (self.test if seed is None else hypothesis.seed(seed)(self.test))()


PYTEST_RUN = RunConfig()  # what a case's test does when pytest runs it as it is
