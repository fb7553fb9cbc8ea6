"""What the cases whose examples are sequences of calls share: the name, the tier, how each
step's calling mode is drawn, the budget, and the replay of a failure.

Such a case records every call it makes as a ``Step`` (in a list it hands to ``observe``
before the first call) and has each judged (``steps.Judge``) as it goes, so a finding names
the step, its calling mode and the steps before it; a failure found otherwise (a metamorphic
relation) is replayed step by step against the oracle to find the first step that differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import Phase, settings
from jax.sharding import Mesh

from oracle.contract import Tier
from properties._src.calling.implementations import Implementation
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.domain.constraints import Constraint, fitting
from properties._src.drawing.shapes import Shapes
from properties._src.judging.judge import replay
from properties._src.judging.steps import Failure, Step


@dataclass(frozen=True)
class SequenceCase:
    """A named check on one tier whose every example is a sequence of recorded steps."""

    name: str
    tier: Tier

    @property
    def id(self) -> str:
        return f"{self.name}-{self.tier.name.lower()}"

    def reproduce(
        self,
        implementation: Implementation,
        steps: Sequence[Step],
        mesh: Mesh | None = None,
        compare: str = "bits",
    ) -> Failure | None:
        """Replay ``steps`` in order; the first that raises or differs from the oracle."""
        return replay(implementation, steps, compare=compare, mesh=mesh)


def pool(shapes: Shapes | None, constraints: tuple[Constraint, ...]) -> tuple[Bucket, ...]:
    """The shapes a sequence case draws from: the pool it is given; given a strategy (a profile
    that draws shapes freely) or nothing, the pool fitted to ``constraints``. A sequence runs
    on few shapes, each compiled once per calling mode."""
    return shapes if isinstance(shapes, tuple) else fitting(BUCKETS, constraints)


def budget(settings_: settings | None, share: int = 1) -> settings:
    """``settings_`` (default: the loaded profile) with ``1/share`` of its examples and no
    explicit phase: these cases have no explicit examples."""
    base = settings_ or settings()
    phases = tuple(p for p in base.phases if p != Phase.explicit)
    return settings(base, max_examples=max(1, base.max_examples // share), phases=phases)
