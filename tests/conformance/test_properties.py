"""Every case in ``CASES`` for every implementation under test; with
``--kvcache-mesh``, on that mesh and with the mesh's own cases too."""

from __future__ import annotations

import pytest

from properties._src.cases.catalog import all_cases
from properties._src.cases.run_config import RunConfig
from properties._src.drawing.shapes import shape_space
from properties._src.running.api import all_constraints
from properties.plugin import mesh_shape


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = all_cases(mesh_shape(metafunc.config) is not None)
    metafunc.parametrize("case", chosen, ids=[case.id for case in chosen])


def test_property(kvcache_implementation, kvcache_mesh, kvcache_check_options, case, pytestconfig):
    constraints = all_constraints(kvcache_check_options["constraints"], mesh_shape(pytestconfig))
    case.build(
        kvcache_implementation,
        RunConfig(
            buckets=shape_space(constraints),
            constraints=constraints,
            compare=kvcache_check_options["compare"],
            mesh=kvcache_mesh,
        ),
    )()
