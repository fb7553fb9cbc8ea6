"""Known-bad implementations: targets the harness must reject, never code to use.

* ``mutants``: the quality gate's deliberately broken implementations, one plausible bug each.
* ``lineage``: the original module's fallback and kernel, defects included.
* ``sharded``: sharded updates that are right on one device and wrong on a mesh; only a run
  with ``--mesh`` rejects them, so they are not in ``KNOWN_BAD``.

``KNOWN_BAD`` names them all as ``MODULE:ATTR``, ready for ``kvcache-check --impl``.
"""

from properties.known_bad.lineage import LINEAGE
from properties.known_bad.mutants import MUTANTS
from properties.known_bad.sharded import SHARDED

KNOWN_BAD: tuple[str, ...] = MUTANTS + LINEAGE

__all__ = ["KNOWN_BAD", "LINEAGE", "MUTANTS", "SHARDED"]
