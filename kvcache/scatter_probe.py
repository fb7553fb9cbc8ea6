"""What the backend's own scatter does to a dtype's bits: probed once per backend and dtype.

XLA may widen the scatter of a narrow float type and so quiet NaN payloads, in rows the
scatter does not write as well as in those it does. Measured on XLA:CPU: jaxlib 0.10 quiets
them in bfloat16, float8_e5m2, float8_e4m3 and float8_e3m4, eagerly and under ``jax.jit``
alike; jaxlib 0.12 scatters bfloat16 exactly and still quiets the three float8 types. The
fallback scatters such a dtype as unsigned bits; the harness compares its NaNs by value.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Float32 patterns worth a probe: signalling NaNs, NaNs with payloads, both signs, -0.0 and 1.
_FLOAT32_PATTERNS = (0x7F800001, 0x7FC00001, 0xFFBFFFFF, 0xFF800001, 0x80000000, 1)


def scatter(cache, dst, rows):
    """``cache`` with ``rows`` written at rows ``dst`` (distinct; any past the end dropped)."""
    return cache.at[dst].set(rows, mode="drop", unique_indices=True)


_probe_scatter = jax.jit(scatter)


@functools.cache
def bits_not_kept(backend: str, dtype: jnp.dtype) -> tuple[int, ...]:
    """The bit patterns of ``dtype`` that ``scatter`` on ``backend`` does not keep, sorted.

    Run once per backend and dtype, at trace time if called while tracing: row 0 (every bit
    pattern of a one- or two-byte type; ``_FLOAT32_PATTERNS`` of float32) is scattered over
    row 1, and a pattern is kept if both rows come back with it. Integers are always kept.
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        return ()
    unsigned = np.dtype(f"uint{8 * dtype.itemsize}")
    if dtype.itemsize <= 2:
        patterns = np.arange(2 ** (8 * dtype.itemsize), dtype=unsigned)
    else:
        patterns = np.array(_FLOAT32_PATTERNS, dtype=unsigned)
    before = np.stack([patterns, np.zeros_like(patterns)])
    device = jax.local_devices(backend=backend)[0]
    with jax.ensure_compile_time_eval():  # one compile: the arrays are made and read in NumPy
        cache, rows = jax.device_put((before.view(dtype), before[:1].view(dtype)), device)
        after = np.asarray(_probe_scatter(cache, np.array([1]), rows)).view(unsigned)
    return tuple(int(p) for p in patterns[(after != patterns).any(axis=0)])


def scatters_exactly(backend: str, dtype: jnp.dtype) -> bool:
    """Whether ``scatter`` of ``dtype`` on ``backend`` keeps every bit, NaN payloads included."""
    return not bits_not_kept(backend, dtype)
