"""Known-bad implementations: targets the harness must reject, never code to use.

* ``mutants``: the quality gate's deliberately broken implementations, one plausible bug each.
* ``lineage``: the original module's fallback and kernel, defects included.
* ``misbehaving``: a segfault, a hang, a raise and a slow but correct one, for ``kvcache-check``'s
  supervision (``MISBEHAVING``).

``KNOWN_BAD`` names the mutants and the lineage as ``MODULE:ATTR``, ready for
``kvcache-check --impl``; ``MISBEHAVING`` is apart, since only a supervised check survives it.
"""

from properties.known_bad.lineage import LINEAGE
from properties.known_bad.misbehaving import MISBEHAVING
from properties.known_bad.mutants import MUTANTS

KNOWN_BAD: tuple[str, ...] = MUTANTS + LINEAGE

__all__ = ["KNOWN_BAD", "LINEAGE", "MISBEHAVING", "MUTANTS"]
