"""Where JAX's TPU interpreter needs mending while the harness runs kernels in it.

Four places in JAX's interpreter (0.10.2 to 0.12) fail kernels that do nothing wrong; each
mend corrects that one place and leaves the rest of the interpreter as it is:

- Before any kernel code runs, the interpreter pads each operand to a whole number of its
  blocks (``pad_to_block_dimension`` in ``jax/_src/pallas/mosaic/interpret/utils.py``) with
  ``((extent - 1) // block + 1) * block``. An operand passed whole (a ``pl.ANY`` operand, whose
  block is the array) with a zero extent, such as a kernel's new tokens on an update with
  none, makes that a division by zero for every kernel, whatever it does. A zero-extent block
  pads nothing, so it is read as extent 1, which gives the unpadded shape the formula means.
- ``clip_range_to_shape`` (same file) calls a range of no rows that starts at the end of a
  buffer (``[T, T)`` of ``T`` rows: a zero-length column whose source is the token count)
  "entirely out of bounds", so the interpreter reports an out-of-bounds read (or swap) of
  nothing. Such an axis touches no element and is kept as it is; JAX clips every other axis.
  A zero-length range starting past the end, or one of negative length, is still reported.
- With race detection on, ``Semaphore.wait`` (``shared_memory.py``) asserts that the semaphore
  carries a vector clock, which only a signal gives it; a zero-byte DMA's wait that is the
  first on its semaphore trips the assert. JAX completes such a wait at once (the count is
  already >= 0) and it has nothing to order, so it returns without learning a clock. Every
  wait for bytes, and so every race between real bytes, is left to JAX.

- A DMA's wait waits for ``math.prod(shape) * itemsize`` bytes of the copy's source
  (``dma_wait`` in ``interpret_pallas_call.py``); with a size read from an 8- or 16-bit slice
  table (``pl.ds(start, size)``), that product is computed in the table's dtype and wraps. An
  int8 size of one 2 x 128 float32 row waits for 0 bytes: the wait returns before the copy
  runs, and the rows are never written (a wrapped count below zero or above the copy's bytes
  leaves the semaphore off zero at exit instead). The copy itself counts its bytes in Python.
  Every integer index of a ref the interpreter reads is widened to int32 first, so the byte
  count is the copy's own. A kernel's own arithmetic in a narrow dtype happens before that,
  and a wrap there is still the kernel's.

Findings it prints instead of raising: at kernel exit it checks that every semaphore is back at
zero (a DMA started and never waited, say) and ``print``s what it finds, which lands in the
middle of the harness's report on stdout. ``printed_as_warnings`` turns whatever the call
prints into ``InterpreterWarning``s naming the implementation.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp


def _mosaic_module(name: str) -> Any:
    """The module ``name`` of JAX's Pallas TPU package (``interpret.utils``, say), or ``None``
    in a JAX without it."""
    try:
        return importlib.import_module(f"jax._src.pallas.mosaic.{name}")
    except ImportError:
        return None


_UTILS = _mosaic_module("interpret.utils")
_PRIMITIVES = _mosaic_module("primitives")
_REF_AND_TRANSFORMS = getattr(_PRIMITIVES, "_get_ref_and_transforms", None)
_PAD = getattr(_UTILS, "pad_to_block_dimension", None)
_CLIP = getattr(_UTILS, "clip_range_to_shape", None)
_SEMAPHORE = getattr(_mosaic_module("interpret.shared_memory"), "Semaphore", None)
_WAIT = getattr(_SEMAPHORE, "wait", None)


def _pad_to_block_dimension(
    value: Any, block_shape: Sequence[int] | None, uninitialized_memory: Any
) -> Any:
    """JAX's padding, with zero-extent blocks read as extent 1 (no padding, no division)."""
    if block_shape is not None:
        block_shape = tuple(extent or 1 for extent in block_shape)
    return _PAD(value, block_shape, uninitialized_memory)  # type: ignore[misc]


def _empty_at_the_end(axis_range: slice | int, extent: int) -> bool:
    """Whether one axis of a range is a slice of no elements starting at the axis's end."""
    return isinstance(axis_range, slice) and axis_range.start == axis_range.stop == extent


def _clip_range_to_shape(
    rnge: tuple[slice | int, ...], shape: tuple[int, ...]
) -> tuple[slice | int, ...] | None:
    """JAX's clipping of ``rnge`` to ``shape`` (``None``: entirely out of bounds), with each
    axis that is empty at its end kept as it is rather than called out of bounds."""
    at_end = [_empty_at_the_end(r, extent) for r, extent in zip(rnge, shape, strict=True)]
    rest = _CLIP(  # type: ignore[misc]
        tuple(r for r, end in zip(rnge, at_end, strict=True) if not end),
        tuple(extent for extent, end in zip(shape, at_end, strict=True) if not end),
    )
    if rest is None:
        return None
    clipped = iter(rest)
    return tuple(r if end else next(clipped) for r, end in zip(rnge, at_end, strict=True))


def _wait(semaphore: Any, value: Any, global_core_id: Any, **options: Any) -> None:
    """JAX's wait, but a zero-byte wait on a semaphore no signal has reached on this core
    returns at once, with nothing to order, instead of asserting a clock it cannot have."""
    if value == 0 and semaphore.detect_races and semaphore.clocks[int(global_core_id)] is None:
        return
    _WAIT(semaphore, value, global_core_id, **options)  # type: ignore[misc]


def _widened(leaf: Any) -> Any:
    """An integer array narrower than 32 bits as int32; anything else as it is."""
    if not isinstance(leaf, jax.Array):
        return leaf
    narrow = jnp.issubdtype(leaf.dtype, jnp.integer) and leaf.dtype.itemsize < 4
    return leaf.astype(jnp.int32) if narrow else leaf


def _ref_and_transforms(ref: Any) -> tuple[Any, Any]:
    """JAX's split of a ref into the ref and its transforms, with each integer index (a
    slice's dynamic start and size among them) narrower than 32 bits widened to int32."""
    ref, transforms = _REF_AND_TRANSFORMS(ref)  # type: ignore[misc]
    return ref, jax.tree.map(_widened, transforms)


@contextlib.contextmanager
def _replaced(owner: Any, name: str, original: Any, mend: Any) -> Iterator[None]:
    """Run the body with ``owner.name`` set to ``mend``; a JAX without ``original`` (where
    the check lives elsewhere) is left as it is."""
    if original is None:
        yield
        return
    setattr(owner, name, mend)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def mended() -> Iterator[None]:
    """Run the body with the four places above corrected in JAX's TPU interpreter."""
    with (
        _replaced(_UTILS, "pad_to_block_dimension", _PAD, _pad_to_block_dimension),
        _replaced(_UTILS, "clip_range_to_shape", _CLIP, _clip_range_to_shape),
        _replaced(_SEMAPHORE, "wait", _WAIT, _wait),
        _replaced(_PRIMITIVES, "_get_ref_and_transforms", _REF_AND_TRANSFORMS, _ref_and_transforms),
    ):
        yield


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
