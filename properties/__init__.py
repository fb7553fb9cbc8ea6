"""Hypothesis strategies and properties that check any paged KV-cache update against the oracle.

    from properties import assert_conforms, check

    assert_conforms(mymodule.update, max_examples=20)   # AssertionError with the counterexample
    result = check("mymodule:update", tier="serving")   # structured results, as kvcache-check's JSON

``updates(tier)`` draws whole updates valid for a tier, for properties of your own;
``PROPERTIES`` and ``CASES`` are what ``check`` runs (``MESH_PROPERTIES`` and ``MESH_CASES``
too, given ``mesh=``, a ``MeshShape`` or its text); ``case.build(implementation, RunConfig(...))``
is one case's Hypothesis test. A counterexample's snippet imports only from here
(``row_ids`` rebuilds the labelled rows its arrays often hold).
``call(implementation, update, mode)``
runs one update in one of ``CALL_MODES`` (eagerly, or under ``jax.jit`` with the cache donated). The pytest plugin (``properties.plugin``)
adds ``--kvcache-impl`` and the ``kvcache_implementation`` fixture; ``kvcache-check`` is the
command line.
"""

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the one list of exports; each is imported on first use (``__getattr__``)
    from oracle.contract import Tier, Update
    from properties._src.calling.implementations import (
        CALL_MODES,
        Implementation,
        ImplementationError,
        call,
        load,
    )
    from properties._src.calling.placement import MeshShape
    from properties._src.cases.catalog import (
        CASES,
        MESH_CASES,
        MESH_PROPERTIES,
        PROPERTIES,
        Case,
        Property,
        PropertyCase,
    )
    from properties._src.cases.run_config import RunConfig
    from properties._src.drawing.contents import row_ids
    from properties._src.drawing.strategies import updates
    from properties._src.judging.comparison import COMPARISONS
    from properties._src.judging.diagnosis import CODES as DIAGNOSES
    from properties._src.running.api import (
        STATUSES,
        TIERS,
        CaseResult,
        CheckResult,
        assert_conforms,
        check,
    )
    from properties._src.running.profiles import PROFILES


def _sources() -> dict[str, tuple[str, str]]:
    """Each export's module and its name there, read from the imports above: importing the
    package (its pytest plugin, say) imports neither the harness nor JAX."""
    tree = ast.parse(Path(__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.asname or alias.name: (node.module, alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


_SOURCES = _sources()


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _SOURCES[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


__all__ = [
    "CALL_MODES",
    "CASES",
    "COMPARISONS",
    "DIAGNOSES",
    "MESH_CASES",
    "MESH_PROPERTIES",
    "PROFILES",
    "PROPERTIES",
    "STATUSES",
    "TIERS",
    "Case",
    "CaseResult",
    "CheckResult",
    "Implementation",
    "ImplementationError",
    "MeshShape",
    "Property",
    "PropertyCase",
    "RunConfig",
    "Tier",
    "Update",
    "assert_conforms",
    "call",
    "check",
    "load",
    "row_ids",
    "updates",
]
