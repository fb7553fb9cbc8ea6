"""Hypothesis strategies and properties that check any paged KV-cache update against the oracle.

    from properties import assert_conforms, check

    assert_conforms(mymodule.update, max_examples=20)   # AssertionError with the counterexample
    result = check("mymodule:update", tier="serving")   # structured results, as kvcache-check's JSON

``updates(tier)`` draws whole updates valid for a tier, for properties of your own;
``PROPERTIES`` and ``CASES`` are what ``check`` runs (``MESH_CASES`` too, given ``mesh=``). The pytest plugin (``properties.plugin``)
adds ``--kvcache-impl`` and the ``kvcache_implementation`` fixture; ``kvcache-check`` is the
command line.
"""

from oracle.contract import Tier, Update
from properties._src.api import (
    STATUSES,
    TIERS,
    CaseResult,
    CheckResult,
    assert_conforms,
    check,
)
from properties._src.cases import CASES, MESH_CASES, PROPERTIES, Case, Property
from properties._src.comparison import COMPARISONS
from properties._src.diagnosis import CODES as DIAGNOSES
from properties._src.implementations import Implementation, ImplementationError, call, load
from properties._src.profiles import PROFILES
from properties._src.strategies import updates

__all__ = [
    "CASES",
    "COMPARISONS",
    "DIAGNOSES",
    "MESH_CASES",
    "PROFILES",
    "PROPERTIES",
    "STATUSES",
    "TIERS",
    "Case",
    "CaseResult",
    "CheckResult",
    "Implementation",
    "ImplementationError",
    "Property",
    "Tier",
    "Update",
    "assert_conforms",
    "call",
    "check",
    "load",
    "updates",
]
