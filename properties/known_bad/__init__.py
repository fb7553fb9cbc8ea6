"""Known-bad implementations: targets the harness must reject, never code to use.

* ``mutants``: the quality gate's deliberately broken implementations, one plausible bug each.
* ``reach``: mutants that break only where the old ``ci`` pool never drew (``REACH``, each
  with the case that kills it most cheaply).
* ``lineage``: the original module's fallback and kernel, defects included.
* ``misbehaving``: a segfault, a hang, a raise and a slow but correct one, for ``kvcache-check``'s
  supervision (``MISBEHAVING``).
* ``sharded``: sharded updates that are right on one device and wrong on a mesh (``SHARDED``);
  only a run with ``--mesh`` rejects them.

``KNOWN_BAD`` names the mutants and the lineage as ``MODULE:ATTR``, ready for
``kvcache-check --impl``; ``MISBEHAVING`` and ``SHARDED`` are apart, since only a supervised
check survives the first and only a check on a mesh rejects the second.
"""

from properties.known_bad.lineage import LINEAGE
from properties.known_bad.misbehaving import MISBEHAVING
from properties.known_bad.mutants import MUTANTS
from properties.known_bad.reach import REACH
from properties.known_bad.sharded import SHARDED

KNOWN_BAD: tuple[str, ...] = MUTANTS + LINEAGE

__all__ = ["KNOWN_BAD", "LINEAGE", "MISBEHAVING", "MUTANTS", "REACH", "SHARDED"]
