"""JAX's persistent compilation cache for the harness: a shape bucket compiles once per machine.

Without it every process compiles each implementation once per shape bucket (about 0.2 s a
program on CPU): each pytest-xdist worker, each ``kvcache-check`` worker, each run. With it,
later processes and runs load the programs from disk. JAX leaves out programs that call back
into Python, such as the kernel in interpret mode, so those still compile per process.
"""

from __future__ import annotations

import os

import jax

DEFAULT_DIRECTORY = ".jax_cache"  # in the working directory, beside Hypothesis's .hypothesis/

# Programs that compile faster than this are cheaper to rebuild than to read back.
MIN_COMPILE_SECONDS = 0.05


def enable(directory: str = DEFAULT_DIRECTORY, *, replace: bool = False) -> str:
    """Cache compiled programs in ``directory``, unless a cache is configured already (for
    instance through ``JAX_COMPILATION_CACHE_DIR``) and not ``replace``; returns the
    directory in use."""
    current = directory_in_use()
    if replace or not current:
        current = os.path.abspath(directory)
        jax.config.update("jax_compilation_cache_dir", current)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return current


def directory_in_use() -> str | None:
    """JAX's compilation cache directory, or None when there is none."""
    return jax.config.values["jax_compilation_cache_dir"]
