"""The kernel for a TPU: lowered to Mosaic on any machine, and natively compiled and run on a
real TPU (``-m tpu``; skipped elsewhere)."""

from __future__ import annotations

import functools

import jax
import pytest
from jax import export

from kvcache.kernel import TPU_LANES
from properties._src.calling.implementations import load
from properties._src.cases.catalog import CASES
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS, DTYPES, INDEX_DTYPES

LANE_ALIGNED = tuple(b for b in BUCKETS if b.head_dim % TPU_LANES == 0)


@pytest.mark.tpu
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_native_kernel(case):
    case.build(load("kvcache:kv_cache_update"), RunConfig(buckets=LANE_ALIGNED))()


@pytest.mark.parametrize(
    ("dtype", "index_dtype"),
    [(dtype, "int32") for dtype in DTYPES] + [("float32", index) for index in INDEX_DTYPES],
)
def test_the_kernel_lowers_to_mosaic_off_a_tpu(dtype, index_dtype):
    """Exported for the TPU platform, the kernel's program goes through Pallas's Mosaic
    lowering (what the interpreter never exercises) and holds the kernel as a TPU custom call,
    for every cache dtype and slice-table dtype the harness draws; but for a bool cache on JAX
    0.10, whose Mosaic lowering refuses DMAs of bool (0.12 lowers them)."""
    shape = jax.ShapeDtypeStruct
    arguments = (
        shape((16, 2, TPU_LANES), dtype),
        shape((3, 9), index_dtype),
        shape((64, 2, TPU_LANES), dtype),
        shape((1,), index_dtype),
    )
    update = jax.jit(load("kvcache:kv_cache_update").function, static_argnames="page_size")
    lowered = functools.partial(export.export(update, platforms=["tpu"]), page_size=16)
    if dtype == "bool" and jax.__version_info__ < (0, 12):  # kvcache.update takes pure JAX
        with pytest.raises(NotImplementedError, match="DMAs with bool dtypes are not supported"):
            lowered(*arguments)
        return
    assert "tpu_custom_call" in lowered(*arguments).mlir_module()
