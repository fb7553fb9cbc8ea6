"""The exception behind a failed host callback, kept so a report can name the kernel's line.

A kernel run in JAX's TPU interpreter makes its DMAs in host callbacks. When one raises (an
out-of-bounds read, say), JAX logs that exception on its callback logger and raises a
``JaxRuntimeError`` that holds only the text of the callback's traceback, all of it JAX's own
frames. The logged exception object carries more: its cause is JAX's record of where the
kernel issued the operation (a ``JaxStackTraceBeforeTransformation``), which names the line of
the kernel that made the bad copy. ``kept`` catches those exceptions instead of letting the log
print a traceback to stderr for every failing example.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

CALLBACK_LOGGER = "jax._src.callback"  # where jax.io_callback logs the exception it re-raises


class _Keeper(logging.Handler):
    """Keeps the exception of each record logged with one."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


@contextlib.contextmanager
def kept() -> Iterator[list[BaseException]]:
    """The exceptions host callbacks raise inside the block, in order, not printed."""
    logger = logging.getLogger(CALLBACK_LOGGER)
    keeper, propagate, level = _Keeper(), logger.propagate, logger.level
    logger.addHandler(keeper)
    logger.propagate = False
    logger.setLevel(logging.ERROR)  # what it logs them at, whatever a user set
    try:
        yield keeper.errors
    finally:
        logger.removeHandler(keeper)
        logger.propagate = propagate
        logger.setLevel(level)
