"""This repository's pytest set-up; the harness's own pytest options come from its plugin.

* The plugin (``properties/plugin.py``) is loaded through its ``pytest11`` entry point once the
  package is installed; from a bare checkout, this file loads it instead.
* ``--hypothesis-profile NAME`` or ``HYPOTHESIS_PROFILE`` picks one of the harness's profiles
  (``properties/_src/running/profiles.py``); the default is ``ci`` when ``CI`` is set, else ``dev``.
* Compiled programs are cached on disk in ``.jax_cache/`` (``properties/_src/calling/compilation_cache.py``),
  so xdist workers and later runs skip compiling them.
* JAX gets 8 virtual CPU devices (``jax_num_cpu_devices``, set before its backend starts), so
  the mesh tests run in the default suite; everything else runs on the first device as before.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from properties._src.calling import compilation_cache, placement
from properties._src.running import profiles

pytest_plugins = ["pytester"]  # tests/process/test_plugin.py runs pytest in a project of its own
if not any(ep.value == "properties.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins.append("properties.plugin")

profiles.register()
compilation_cache.enable()
placement.ensure_cpu_devices(8)
