"""Where JAX's TPU interpreter needs mending while the harness runs kernels in it.

A crash that says nothing about the kernel:

Before any kernel code runs, the interpreter pads each operand to a whole number of its
blocks (``pad_to_block_dimension`` in ``jax/_src/pallas/mosaic/interpret/utils.py``, JAX
0.10.2 to 0.12) with ``((extent - 1) // block + 1) * block``. An operand passed whole (a
``pl.ANY`` operand, whose block is the array) with a zero extent, such as a kernel's new tokens
on an update with none, makes that a division by zero: ``ZeroDivisionError`` for every
kernel, whatever it does, so no kernel could be checked on such shapes off a TPU. A
zero-extent block pads nothing, so ``zero_extent_blocks_unpadded`` reads it as extent 1, which
gives the unpadded shape the formula means. Nothing else of the interpreter is touched.

Findings it prints instead of raising: at kernel exit it checks that every semaphore is back at
zero (a DMA started and never waited, say) and ``print``s what it finds, which lands in the
middle of the harness's report on stdout. ``printed_as_warnings`` turns whatever the call
prints into ``InterpreterWarning``s naming the implementation.
"""

from __future__ import annotations

import contextlib
import io
import warnings
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


class InterpreterWarning(UserWarning):
    """Something JAX's TPU interpreter printed while running an implementation's kernel."""


@contextlib.contextmanager
def printed_as_warnings(source: object) -> Iterator[None]:
    """Run the body with stdout captured; each line printed becomes an
    ``InterpreterWarning`` that names ``source``."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip():
                message = f"{source}: printed while interpreted: {line.strip()}"
                warnings.warn(message, InterpreterWarning, stacklevel=3)
