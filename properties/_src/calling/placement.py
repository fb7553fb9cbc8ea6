"""Updates placed on a device mesh (``--mesh pages=P,heads=H``), to check a sharded update.

The mesh has two axes, ``"pages"`` and ``"heads"``. The cache's rows are split over
``"pages"`` (whole pages, since shapes are drawn with ``pages%P``) and its heads over
``"heads"``; the new tokens' heads too; the slice indices and the count are replicated. An
implementation finds the mesh on its arguments' ``sharding``. Off a TPU the devices are
virtual CPU devices, which JAX must be asked for before its backend starts
(``ensure_cpu_devices``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import jax
import numpy as np
from jax._src import xla_bridge
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from oracle.contract import Update
from properties._src.domain.constraints import Constraint

AXES = ("pages", "heads")
CACHE_SPEC = PartitionSpec("pages", "heads")
TOKENS_SPEC = PartitionSpec(None, "heads")
REPLICATED = PartitionSpec()
SPECS = (TOKENS_SPEC, REPLICATED, CACHE_SPEC, REPLICATED)  # in argument order
FORCED_DEVICES = re.compile(r"--xla_force_host_platform_device_count=(\d+)")


@dataclass(frozen=True)
class MeshShape:
    """The size of each mesh axis."""

    pages: int
    heads: int

    @classmethod
    def parse(cls, text: str) -> MeshShape:
        """``"pages=2,heads=4"`` to a ``MeshShape``, or ``ValueError`` saying what is wrong."""
        sizes: dict[str, int] = {}
        for item in text.replace(" ", "").split(","):
            name, separator, size = item.partition("=")
            if not separator or name not in AXES or name in sizes:
                raise ValueError(
                    f"mesh {text!r}: expected pages=P,heads=H (each axis once), got {item!r}"
                )
            if not size.isdigit() or int(size) < 1:
                raise ValueError(f"mesh {text!r}: the size of {name!r} must be a positive integer")
            sizes[name] = int(size)
        if set(sizes) != set(AXES):
            raise ValueError(f"mesh {text!r}: name both axes, pages=P,heads=H")
        return cls(**sizes)

    @property
    def devices(self) -> int:
        return self.pages * self.heads

    def constraints(self) -> tuple[Constraint, ...]:
        """What the drawn shapes must satisfy for every axis to split them evenly."""
        return (Constraint("pages", self.pages), Constraint("heads", self.heads))

    def build(self) -> Mesh:
        """The mesh on JAX's first devices; ``ValueError`` if JAX has too few."""
        ensure_cpu_devices(self.devices)
        devices = jax.devices()
        if len(devices) < self.devices:
            raise ValueError(
                f"mesh {self} needs {self.devices} devices; JAX has {len(devices)} "
                f"{devices[0].platform} device(s). On CPU, set XLA_FLAGS="
                f"--xla_force_host_platform_device_count={self.devices} (or "
                f"jax.config.update('jax_num_cpu_devices', {self.devices})) before JAX starts"
            )
        return jax.make_mesh(
            (self.pages, self.heads),
            AXES,
            axis_types=(AxisType.Auto,) * len(AXES),
            devices=devices[: self.devices],
        )

    def __str__(self) -> str:
        return f"pages={self.pages},heads={self.heads}"


def as_mesh_shape(mesh: MeshShape | str | None) -> MeshShape | None:
    return MeshShape.parse(mesh) if isinstance(mesh, str) else mesh


def ensure_cpu_devices(count: int) -> None:
    """Ask JAX for at least ``count`` virtual CPU devices, if its backend has not started and
    nothing (``XLA_FLAGS`` or ``jax_num_cpu_devices``) asks for as many already. It changes
    only the CPU backend, so it is harmless on a TPU or GPU host."""
    if xla_bridge.backends_are_initialized():
        return
    forced = FORCED_DEVICES.search(os.environ.get("XLA_FLAGS", ""))
    configured = max(jax.config.values["jax_num_cpu_devices"], int(forced[1]) if forced else 1)
    if configured < count:
        jax.config.update("jax_num_cpu_devices", count)


def arguments(update: Update, mesh: Mesh | None) -> tuple[jax.Array, ...]:
    """The update's arrays on the device: on ``mesh`` as the module says, else as they are."""
    arrays = (
        update.new_kv_tokens,
        update.slice_indices,
        update.kv_cache_pages,
        update.total_update_slices,
    )
    if mesh is None:  # a transfer: unlike jnp.asarray, it compiles no program per shape
        return tuple(jax.device_put(array) for array in arrays)
    return tuple(
        jax.device_put(array, NamedSharding(mesh, spec))
        for array, spec in zip(arrays, SPECS, strict=True)
    )


def fits(update: Update, mesh: Mesh | None) -> bool:
    """Whether ``update``'s cache splits evenly over ``mesh`` (always, without one)."""
    if mesh is None:
        return True
    rows, heads, _ = update.kv_cache_pages.shape
    pages = rows // update.page_size
    return pages % mesh.shape["pages"] == 0 and heads % mesh.shape["heads"] == 0


class OnMesh(np.ndarray):
    """A result copied to the host, with the cache's sharding going in and the result's."""

    cache_sharding: NamedSharding
    result_sharding: jax.sharding.Sharding | None


def to_host(result, mesh: Mesh | None) -> np.ndarray:
    """``result`` as a NumPy array; on a mesh, an ``OnMesh`` that remembers the shardings."""
    host = np.asarray(result)
    if mesh is None:
        return host
    kept = host.view(OnMesh)
    kept.cache_sharding = NamedSharding(mesh, CACHE_SPEC)
    kept.result_sharding = getattr(result, "sharding", None)
    return kept


def _describe(sharding) -> str:
    if isinstance(sharding, NamedSharding):
        return f"split {sharding.spec} over mesh {dict(sharding.mesh.shape)}"
    if sharding is None:
        return "not a JAX array"
    return f"a {type(sharding).__name__} over {len(sharding.device_set)} device(s)"


def sharding_preserved(update: Update, actual: np.ndarray) -> None:
    """The result is split over the mesh as the cache was (the ``sharding-preserved`` property)."""
    cache = getattr(actual, "cache_sharding", None)
    assert cache is not None, "the update did not run on a mesh, so there is no sharding to check"
    result = actual.result_sharding  # type: ignore[attr-defined]
    kept = result is not None and result.is_equivalent_to(cache, actual.ndim)
    assert kept, f"the result is {_describe(result)}; the cache was {_describe(cache)}"
