"""Hypothesis budgets: ``dev`` (quick, local), ``ci`` (deterministic, the CI default) and
``thorough`` (many examples, for a nightly or a release).

They are plain ``settings`` objects, not registered with Hypothesis on import, so a project
that installs this package keeps its own profiles of the same names. ``register()`` registers
them (this repository's conftest.py does, for ``--hypothesis-profile``).

Failures found in CI replay locally. ``ci`` is derandomised, so the same run locally draws the
same examples (Hypothesis allows no database with it), however the harness and the
implementation are installed (``drawing/reproducible.py``). ``thorough`` explores at random and keeps
what it finds in ``.hypothesis/examples``; the GitHub workflow's nightly job runs it and uploads
that folder as the artifact ``hypothesis-example-db-pyXY``. With
``KVCACHE_SHARED_EXAMPLES=owner/repo`` and a ``GITHUB_TOKEN`` that can read the repository's
actions, ``dev`` and ``thorough`` also read the latest such artifact (read-only) and replay its
failures first. The Python API (``properties.check``) uses no database: a user's run leaves
nothing behind.

No profile has ``Phase.explain``. Once a test has failed, that phase has Hypothesis trace every
line of Python each shrink step runs (``sys.settrace`` on Python 3.11: JAX's tracing and the TPU
interpreter included) and then re-run the shrunk example with each part varied. On the seed
fallback's ``shapes-change-between-calls`` (general, ``ci``) it took the check from 5.2 s to
75.5 s for the same counterexample; the runner never shows its explanations anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]
LOCAL_EXAMPLES = ".hypothesis/examples"
ARTIFACT = f"hypothesis-example-db-py{sys.version_info.major}{sys.version_info.minor}"


def without_explain(phases: Iterable[Phase]) -> tuple[Phase, ...]:
    """``phases`` less ``Phase.explain`` (see above: dear, and never shown)."""
    return tuple(phase for phase in phases if phase != Phase.explain)


PHASES = without_explain(Phase)


def _database() -> ExampleDatabase:
    """The local examples, plus CI's shared artifact where ``KVCACHE_SHARED_EXAMPLES`` names it."""
    local = DirectoryBasedExampleDatabase(LOCAL_EXAMPLES)
    owner, _, repository = os.environ.get("KVCACHE_SHARED_EXAMPLES", "").partition("/")
    if not (owner and repository):
        return local
    shared = GitHubArtifactDatabase(owner, repository, artifact_name=ARTIFACT)
    return MultiplexedDatabase(local, ReadOnlyDatabase(shared))


PROFILES: dict[str, settings] = {
    "dev": settings(
        max_examples=72,  # two examples on each of the 36 pool shapes: the simplest, one drawn
        deadline=None,
        phases=PHASES,
        database=_database(),
        suppress_health_check=SLOW_DATA,
    ),
    "ci": settings(
        max_examples=100,  # three examples on each of the 36 pool shapes: the simplest, two drawn
        deadline=None,
        phases=PHASES,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=SLOW_DATA,
    ),
    "thorough": settings(
        max_examples=1000,
        deadline=None,
        phases=PHASES,
        database=_database(),
        suppress_health_check=SLOW_DATA,
    ),
}


def default_profile() -> str:
    """``HYPOTHESIS_PROFILE`` if it names one of ours, else ``ci`` under CI, else ``dev``."""
    named = os.environ.get("HYPOTHESIS_PROFILE")
    if named in PROFILES:
        return named
    return "ci" if os.environ.get("CI") else "dev"


def resolve(profile: str | settings | None) -> settings:
    """A profile name, a ``settings`` object, or ``None`` (the default profile) to settings."""
    if isinstance(profile, settings):
        return profile
    name = default_profile() if profile is None else profile
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def register() -> str:
    """Register the profiles with Hypothesis and load the default one; return its name."""
    for name, profile in PROFILES.items():
        settings.register_profile(name, profile)
    name = os.environ.get("HYPOTHESIS_PROFILE") or default_profile()
    settings.load_profile(name)
    return name
