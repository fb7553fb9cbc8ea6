"""Hypothesis profiles: ``dev`` (quick, local), ``ci`` (deterministic, the CI default) and
``thorough`` (many examples, for a nightly or a release)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=SLOW_DATA)
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=SLOW_DATA,
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=SLOW_DATA
)


def default_profile() -> str:
    """``HYPOTHESIS_PROFILE`` if set, else ``ci`` under CI, else ``dev``."""
    return os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")


def load_default() -> str:
    name = default_profile()
    settings.load_profile(name)
    return name
