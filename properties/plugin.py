"""The pytest plugin (registered as the ``pytest11`` entry point ``kvcache``).

* ``--kvcache-impl MODULE:ATTR`` (repeatable), ``KVCACHE_IMPL=a:b,c:d`` and the ini option
  ``kvcache_impl`` name the implementations under test (``builtin``: the project's own).
* A test taking the ``kvcache_implementation`` fixture runs once per implementation.
* ``--kvcache-compare bits|values`` and ``--kvcache-constraint DIM%K|FIELD=DTYPE``
  (repeatable) say how results are compared and which shapes the implementations take;
  ``--kvcache-check-seconds`` and ``--kvcache-shrink-seconds`` bound each check's search and
  each shrink. A test reads them from the ``kvcache_check_options`` fixture (keyword arguments
  for ``check``/``assert_conforms``), the first two also from ``compare(config)`` and
  ``constraints(config)``.
* ``--kvcache-mesh pages=P,heads=H`` runs the property cases with every update placed on a
  P x H device mesh (virtual CPU devices off a TPU), plus ``sharding-preserved``; the
  ``kvcache_mesh`` fixture is that ``jax.sharding.Mesh``, or ``None``.
* Tests marked ``tpu`` run natively on a TPU: they are deselected unless ``-m`` names ``tpu``,
  and skipped where JAX sees no TPU.
* The report header names the implementations under test, JAX's backend and the Hypothesis
  profile.

It registers no Hypothesis profile and changes no setting: the project that uses it keeps its
own. Loading it imports neither JAX nor the harness: a project that has the package installed
and names no implementation, constraint, mesh or ``-m tpu`` never starts JAX through it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from properties._src.domain.comparisons import COMPARE_HELP, COMPARISONS
from properties._src.domain.constraint_syntax import CONSTRAINT_HELP, CONSTRAINT_METAVAR

if TYPE_CHECKING:
    from properties._src.calling.implementations import Implementation
    from properties._src.calling.placement import MeshShape
    from properties._src.domain.constraints import Constraint

FIXTURE = "kvcache_implementation"
ENVIRONMENT = "KVCACHE_IMPL"
_IMPLEMENTATIONS = pytest.StashKey["list[Implementation]"]()
_MESH_SHAPE = pytest.StashKey["MeshShape | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvcache", "paged KV-cache update harness")
    group.addoption(
        "--kvcache-impl",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help=f"an implementation under test (repeatable; 'builtin': the project's own); "
        f"{ENVIRONMENT} adds more, comma-separated",
    )
    group.addoption(
        "--kvcache-compare",
        choices=COMPARISONS,
        default="bits",
        help=COMPARE_HELP,
    )
    group.addoption(
        "--kvcache-constraint",
        action="append",
        default=[],
        metavar=CONSTRAINT_METAVAR,
        help=CONSTRAINT_HELP,
    )
    group.addoption(
        "--kvcache-check-seconds",
        type=float,
        metavar="SECONDS",
        help="each check's search stops after this long, the check incomplete (check_seconds)",
    )
    group.addoption(
        "--kvcache-shrink-seconds",
        type=float,
        metavar="SECONDS",
        help="a shrink stops after this long with the smallest example so far (shrink_seconds)",
    )
    group.addoption(
        "--kvcache-mesh",
        metavar="pages=P,heads=H",
        help="place every update of the property cases on a P x H device mesh "
        "(on CPU, virtual devices) and check that results keep their sharding",
    )
    parser.addini(
        "kvcache_impl",
        type="linelist",
        default=[],
        help="implementations under test when neither --kvcache-impl nor KVCACHE_IMPL names any",
    )


def specs(config: pytest.Config) -> list[str]:
    """The command line's and the environment's specs, else the ini file's."""
    from_environment = [s.strip() for s in os.environ.get(ENVIRONMENT, "").split(",") if s.strip()]
    given = config.getoption("--kvcache-impl") + from_environment
    return given or list(config.getini("kvcache_impl"))


def implementations(config: pytest.Config) -> list[Implementation]:
    """The implementations under test, loaded once per session."""
    return config.stash[_IMPLEMENTATIONS]


def compare(config: pytest.Config) -> str:
    """How results are compared with the oracle: ``"bits"`` or ``"values"``."""
    return config.getoption("--kvcache-compare")


def constraints(config: pytest.Config) -> tuple[Constraint, ...]:
    """The shape constraints given (checked to leave some shape)."""
    given = config.getoption("--kvcache-constraint")
    if not given:
        return ()
    from properties._src.domain.constraints import in_force

    return in_force(given)


@pytest.fixture
def kvcache_check_options(request: pytest.FixtureRequest) -> dict:
    """``compare``, ``constraints`` and the budgets given as keyword arguments for
    ``check``/``assert_conforms`` (a budget not given is left to ``check``'s default)."""
    config = request.config
    budgets = {
        name: seconds
        for name in ("check_seconds", "shrink_seconds")
        if (seconds := config.getoption(f"--kvcache-{name.replace('_', '-')}")) is not None
    }
    return {"compare": compare(config), "constraints": constraints(config), **budgets}


def mesh_shape(config: pytest.Config) -> MeshShape | None:
    """The ``--kvcache-mesh`` given, if any."""
    return config.stash[_MESH_SHAPE]


@pytest.fixture(scope="session")
def kvcache_mesh(pytestconfig: pytest.Config):
    """The device mesh of ``--kvcache-mesh``, or ``None``."""
    shape = mesh_shape(pytestconfig)
    if shape is None:
        return None
    try:
        return shape.build()
    except ValueError as error:
        pytest.fail(str(error), pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tpu: runs the kernel natively on a TPU (deselected unless -m tpu is given)"
    )
    named, text = specs(config), config.getoption("--kvcache-mesh")
    config.stash[_IMPLEMENTATIONS], config.stash[_MESH_SHAPE] = [], None
    if not (named or text or config.getoption("--kvcache-constraint")):
        return  # the plugin is not used: nothing to load, and JAX is not started
    from properties._src.calling.implementations import ImplementationError, load_all
    from properties._src.calling.placement import MeshShape, ensure_cpu_devices

    try:
        shape = config.stash[_MESH_SHAPE] = MeshShape.parse(text) if text else None
        if shape:
            ensure_cpu_devices(shape.devices)  # before JAX starts (an implementation may)
        config.stash[_IMPLEMENTATIONS] = load_all(named)
        constraints(config)
    except (ImplementationError, ValueError) as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    names = ", ".join(i.name for i in implementations(config))
    lines = [
        f"kvcache implementations under test: {names or f'none (--kvcache-impl or {ENVIRONMENT})'}",
        f"kvcache constraints: {', '.join(map(str, constraints(config))) or 'none'}; "
        f"compare: {compare(config)}",
    ]
    if not (names or mesh_shape(config)):
        return lines  # the platform's and JAX's lines would start JAX, for a run without it
    import jax

    from properties._src.judging.comparison import platform, platform_phrase

    lines[-1] += f"; {platform_phrase(platform(), compare(config))}"
    return [
        *lines,
        f"jax {jax.__version__} on {jax.default_backend()} ({jax.device_count()} devices); "
        f"hypothesis profile {settings.get_current_profile_name()!r}"
        + (f"; mesh {mesh_shape(config)}" if mesh_shape(config) else ""),
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE in metafunc.fixturenames:
        chosen = implementations(metafunc.config)
        metafunc.parametrize(FIXTURE, chosen, ids=[i.name for i in chosen])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "tpu" in (config.getoption("-m") or ""):
        import jax

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
