"""Who raised: the implementation's own code, or JAX's TPU interpreter itself.

An exception inside an interpreted kernel reaches the caller as a ``JaxRuntimeError`` whose
message embeds the Python traceback of the callback that raised; other exceptions carry
their own traceback. ``attribute`` reads two frames from either: the innermost, which raised
(often JAX's or NumPy's, on the implementation's behalf), and the innermost of the
implementation's own code (outside JAX, NumPy, Python's library and the harness), which a
maintainer can act on. A kernel's DMA reported by the interpreter has no frame of its own
there (JAX runs it in a callback, long after the kernel was traced), so its own frame is read
from JAX's record of where the kernel issued the operation (the cause ``call`` chains from the
callback, ``callback_errors``). A bare
``AssertionError`` raised inside JAX (an internal ``assert``, such as the race detector's in
``jax/_src/pallas/mosaic/interpret/shared_memory.py`` when a zero-byte DMA is waited on before
its semaphore was ever signalled) is an interpreter fault, not the implementation's: the
interpreter's deliberate reports (an out-of-bounds access, a race) use other types and say
what they are.
"""

from __future__ import annotations

import re
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

import jax
import jaxlib
import numpy as np
from jax._src.source_info_util import JaxStackTraceBeforeTransformation

JAX_SOURCE = Path(jax.__file__).resolve().parent  # .../site-packages/jax
INTERPRETER_SOURCE = JAX_SOURCE / "_src" / "pallas" / "mosaic" / "interpret"
# Code that raises on an implementation's behalf, never its own: JAX, NumPy, Python's library.
LIBRARY_SOURCES = (
    JAX_SOURCE,
    *(Path(str(module.__file__)).resolve().parent for module in (jaxlib, np)),
    Path(sysconfig.get_paths()["stdlib"]).resolve(),
)
HARNESS_SOURCE = Path(__file__).resolve().parents[2]  # .../properties, which calls it
KNOWN_BAD_SOURCE = HARNESS_SOURCE / "known_bad"  # the quality gate's targets: implementations
# What the interpreter raises on purpose, about the kernel: out-of-bounds accesses (an
# IndexError for a read, a ValueError for a write, each saying so) and races. Anything else it
# raises is its own failing. (Its out-of-bounds report about a read of no rows at the end of a
# buffer is mended away while the harness interprets: ``interpreter_repairs``.)
DELIBERATE_REPORTS = ("Out-of-bounds", "RACE DETECTED")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)\s*$')
_RAISED = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):?\s?(?P<message>.*)$"
)


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str

    @property
    def in_jax(self) -> bool:
        return Path(self.file).resolve().is_relative_to(JAX_SOURCE)

    @property
    def in_interpreter(self) -> bool:
        return Path(self.file).resolve().is_relative_to(INTERPRETER_SOURCE)

    @property
    def in_library(self) -> bool:
        path = Path(self.file).resolve()
        return any(path.is_relative_to(source) for source in LIBRARY_SOURCES)

    @property
    def in_harness(self) -> bool:
        path = Path(self.file).resolve()
        return path.is_relative_to(HARNESS_SOURCE) and not path.is_relative_to(KNOWN_BAD_SOURCE)

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


def own_frame(frames: list[Frame]) -> Frame | None:
    """The innermost frame of the implementation's own code in ``frames`` (outermost first):
    walking out from the raise, the first outside the libraries, unless the harness (which
    called the implementation) comes first."""
    for frame in reversed(frames):
        if frame.in_harness:
            return None
        if not frame.in_library:
            return frame
    return None


@dataclass(frozen=True)
class Raise:
    """What was raised (the innermost exception's type and message), where (``frame``), and
    the innermost frame of the implementation's own code on the way there (``own``)."""

    type: str
    message: str
    frame: Frame | None
    own: Frame | None = None

    @property
    def interpreter_fault(self) -> bool:
        """An internal ``assert`` of JAX's, or anything the TPU interpreter's own code raises
        but its deliberate reports of the kernel's faults (out-of-bounds accesses, races): a
        ``ZeroDivisionError`` padding a zero-row array, a ``NotImplementedError`` for a dtype."""
        if self.frame is None or not self.frame.in_jax:
            return False
        if self.type == "AssertionError":
            return True
        return self.frame.in_interpreter and not self.kernel_report

    @property
    def kernel_report(self) -> bool:
        """One of the TPU interpreter's deliberate reports of the kernel's own fault."""
        return (
            self.frame is not None
            and self.frame.in_interpreter
            and any(report in self.message for report in DELIBERATE_REPORTS)
        )

    def __str__(self) -> str:
        what = f"{self.type}: {self.message}" if self.message else self.type
        if self.own is not None and self.own != self.frame:
            return f"{what} at {self.own} (raised in {self.frame})"
        if self.kernel_report:  # JAX records no line of the kernel for some (a write's)
            return f"{what}: a DMA of the kernel, reported by the TPU interpreter at {self.frame}"
        return f"{what} at {self.frame}" if self.frame else what


def _embedded(text: str) -> Raise | None:
    """The innermost raise of a traceback printed into ``text`` (a callback's), if any."""
    lines = text.splitlines()
    frames = [(i, m) for i, line in enumerate(lines) if (m := _FRAME.match(line))]
    if not frames:
        return None
    last_index = frames[-1][0]
    raised = next(
        (m for line in lines[last_index + 1 :] if (m := _RAISED.match(line.strip()))), None
    )
    stack = [Frame(m["file"], int(m["line"]), m["function"]) for _, m in frames]
    if raised is None:
        return Raise("Exception", "", stack[-1], own_frame(stack))
    kind = raised["type"].rsplit(".", 1)[-1]
    return Raise(kind, raised["message"].strip(), stack[-1], own_frame(stack))


def attribute(error: BaseException) -> Raise:
    """The innermost raise behind ``error``, with the frame that raised it and the innermost
    of the implementation's own."""
    innermost = error
    # JAX chains the user's traced call site as a cause: where it was traced, not who raised.
    while innermost.__cause__ is not None and not isinstance(
        innermost.__cause__, JaxStackTraceBeforeTransformation
    ):
        innermost = innermost.__cause__
    embedded = _embedded(str(innermost))
    if embedded is not None:
        return embedded
    stack = _frames(innermost)
    own = own_frame(stack)
    if own is None and isinstance(innermost.__cause__, JaxStackTraceBeforeTransformation):
        own = own_frame(_frames(innermost.__cause__))  # where a kernel issued the operation
    message = str(innermost).strip().splitlines()
    frame = stack[-1] if stack else None
    return Raise(type(innermost).__name__, message[0] if message else "", frame, own)


def _frames(error: BaseException) -> list[Frame]:
    """The frames of ``error``'s traceback, outermost first."""
    return [
        Frame(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(error.__traceback__)
    ]
