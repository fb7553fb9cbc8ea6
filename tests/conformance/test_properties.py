"""Every case in ``CASES`` for every implementation under test, in the units ``kvcache-check``
runs (a tier's property cases judge one call per example); with ``--kvcache-mesh``, on that
mesh and with the mesh's own cases too."""

from __future__ import annotations

import pytest
from hypothesis import settings

from properties._src.cases.catalog import all_cases, units
from properties._src.running.api import assert_conforms
from properties.plugin import mesh_shape


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = units(all_cases(mesh_shape(metafunc.config) is not None))
    metafunc.parametrize("unit", chosen, ids=[unit.id for unit in chosen])


def test_unit(kvcache_implementation, kvcache_check_options, unit, pytestconfig):
    """The unit's whole budget under the loaded profile, every pool shape compiled cold: the
    general tier's properties take 20 to 45 s on a 2-core machine under ``ci``."""
    assert_conforms(
        kvcache_implementation,
        cases=unit.cases,
        profile=settings(),  # the profile loaded (--hypothesis-profile, or ci under CI)
        mesh=mesh_shape(pytestconfig),
        **kvcache_check_options,
    )
