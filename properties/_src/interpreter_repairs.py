"""Crashes of JAX's TPU interpreter that say nothing about the kernel, mended while it runs.

Before any kernel code runs, the interpreter pads each operand to a whole number of its
blocks (``pad_to_block_dimension`` in ``jax/_src/pallas/mosaic/interpret/utils.py``, JAX
0.10.2 to 0.12) with ``((extent - 1) // block + 1) * block``. An operand passed whole (a
``pl.ANY`` operand, whose block is the array) with a zero extent, such as a kernel's new tokens
on an update with none, makes that a division by zero: ``ZeroDivisionError`` for every
kernel, whatever it does, so no kernel could be checked on such shapes off a TPU. A
zero-extent block pads nothing, so ``zero_extent_blocks_unpadded`` reads it as extent 1, which
gives the unpadded shape the formula means. Nothing else of the interpreter is touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from jax._src.pallas.mosaic.interpret import utils as interpreter_utils

_PAD = getattr(interpreter_utils, "pad_to_block_dimension", None)


def _pad_to_block_dimension(
    value: Any, block_shape: Sequence[int] | None, uninitialized_memory: Any
) -> Any:
    """JAX's padding, with zero-extent blocks read as extent 1 (no padding, no division)."""
    if block_shape is not None:
        block_shape = tuple(extent or 1 for extent in block_shape)
    return _PAD(value, block_shape, uninitialized_memory)  # type: ignore[misc]


@contextlib.contextmanager
def zero_extent_blocks_unpadded() -> Iterator[None]:
    """Run the body with the interpreter padding zero-extent blocks by nothing. A JAX without
    ``pad_to_block_dimension`` is left as it is."""
    if _PAD is None:
        yield
        return
    interpreter_utils.pad_to_block_dimension = _pad_to_block_dimension
    try:
        yield
    finally:
        interpreter_utils.pad_to_block_dimension = _PAD
