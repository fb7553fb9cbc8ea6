"""Hypothesis budgets: ``dev`` (quick, local), ``ci`` (deterministic, the CI default) and
``thorough`` (many examples, for a nightly or a release).

They are plain ``settings`` objects, not registered with Hypothesis on import, so a project
that installs this package keeps its own profiles of the same names. ``register()`` registers
them (this repository's conftest.py does, for ``--hypothesis-profile``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]

PROFILES: dict[str, settings] = {
    "dev": settings(max_examples=15, deadline=None, suppress_health_check=SLOW_DATA),
    "ci": settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=SLOW_DATA,
    ),
    "thorough": settings(max_examples=1000, deadline=None, suppress_health_check=SLOW_DATA),
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
