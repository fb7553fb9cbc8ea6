"""pytest set-up: Hypothesis profiles, the ``tpu`` marker and the implementations under test.

* ``--hypothesis-profile NAME`` or ``HYPOTHESIS_PROFILE`` picks a profile (see
  ``properties/profiles.py``); the default is ``ci`` when ``CI`` is set, else ``dev``.
* Tests marked ``tpu`` run the kernel natively; they are deselected unless ``-m`` names
  ``tpu``, and skipped where JAX sees no TPU.
* Compiled programs are cached on disk in ``.jax_cache/`` (see
  ``properties/compilation_cache.py``), so xdist workers and later runs skip compiling them.
* Every test taking an ``implementation`` argument runs once per implementation: the
  project's own, plus each ``--kvcache-impl MODULE:ATTR`` and each entry of ``KVCACHE_IMPL``
  (comma-separated).
"""

from __future__ import annotations

import os

import jax
import pytest
from hypothesis import settings

from properties import compilation_cache, profiles
from properties.implementations import ImplementationError, builtin, load

profiles.load_default()
compilation_cache.enable()


def pytest_addoption(parser):
    parser.addoption(
        "--kvcache-impl",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="add an implementation under test (repeatable); KVCACHE_IMPL adds more, comma-separated",
    )


def _extra_specs(config) -> list[str]:
    from_env = [s.strip() for s in os.environ.get("KVCACHE_IMPL", "").split(",") if s.strip()]
    return config.getoption("--kvcache-impl") + from_env


def pytest_configure(config):
    try:
        config.kvcache_implementations = builtin() + [load(s) for s in _extra_specs(config)]
    except ImplementationError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header(config):
    names = ", ".join(i.name for i in config.kvcache_implementations)
    return [
        f"kvcache implementations under test: {names}",
        f"jax {jax.__version__} on {jax.default_backend()}; "
        f"hypothesis profile {settings.get_current_profile_name()!r}; "
        f"compilation cache {jax.config.jax_compilation_cache_dir}",
    ]


def pytest_generate_tests(metafunc):
    if "implementation" in metafunc.fixturenames:
        implementations = metafunc.config.kvcache_implementations
        metafunc.parametrize(
            "implementation", implementations, ids=[i.name for i in implementations]
        )


def pytest_collection_modifyitems(config, items):
    if "tpu" in (config.getoption("-m") or ""):
        if jax.default_backend() != "tpu":
            skip = pytest.mark.skip(
                reason=f"no TPU: JAX's default backend is {jax.default_backend()}"
            )
            for item in items:
                if "tpu" in item.keywords:
                    item.add_marker(skip)
        return
    selected = [item for item in items if "tpu" not in item.keywords]
    deselected = [item for item in items if "tpu" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
