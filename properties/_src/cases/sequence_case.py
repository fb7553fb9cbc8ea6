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

from hypothesis import HealthCheck, Phase, settings

from oracle.contract import Tier
from properties._src.calling.implementations import Implementation
from properties._src.cases.run_config import PYTEST_RUN, RunConfig
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.domain.constraints import fitting
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
        self, implementation: Implementation, steps: Sequence[Step], config: RunConfig = PYTEST_RUN
    ) -> Failure | None:
        """Replay ``steps`` in order; the first that raises or differs from the oracle."""
        return replay(implementation, steps, compare=config.compare, mesh=config.mesh)


def pool(config: RunConfig) -> tuple[Bucket, ...]:
    """The shapes a sequence case draws from: the run's pool; given a strategy (a profile that
    draws shapes freely) or nothing, the pool fitted to the run's constraints (a mesh's
    included, so every shape splits over it). A sequence runs
    on few shapes, each compiled once per calling mode."""
    shapes = config.buckets
    return shapes if isinstance(shapes, tuple) else fitting(BUCKETS, config.constraints)


def budget(config: RunConfig, share: int = 1, filters: bool = False) -> settings:
    """The run's settings with ``1/share`` of its examples and no explicit phase: these cases
    have no explicit examples. ``filters``: the case rejects some of what it draws by design
    (``assume``), so Hypothesis's check that too much is filtered is not a finding."""
    base = config.settings_or_profile()
    phases = tuple(p for p in base.phases if p != Phase.explicit)
    suppressed = [*base.suppress_health_check, *([HealthCheck.filter_too_much] if filters else [])]
    return settings(
        base,
        max_examples=max(1, base.max_examples // share),
        phases=phases,
        suppress_health_check=suppressed,
    )
