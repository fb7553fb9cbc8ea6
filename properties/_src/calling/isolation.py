"""Every example starts from clean state: nothing one call leaves behind reaches the next.

Two things outlive a call that fails inside the TPU interpreter:

* the interpreter's shared memory (simulated buffers, semaphores, the race detector), kept
  for debugging after an exception until ``reset_tpu_interpret_mode_state()``;
* JAX's runtime tokens for ordered effects (``jax._src.dispatch.runtime_tokens``). The
  interpreter's callbacks are ordered effects, so each program takes the last program's token
  as an input. When a failing program's error surfaces only after dispatch returned (it
  happens now and then on XLA:CPU), its token is stored in an error state, and every later
  program that takes it fails with that same stale error.

``clean_slate()`` resets the interpreter, then waits for the tokens of everything dispatched
so far and discards them (a poisoned one included), on entry and on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from jax._src import dispatch
from jax.experimental.pallas import tpu as pltpu


def settle_runtime_tokens() -> None:
    """Wait for every ordered effect dispatched so far, then forget the tokens (errors too)."""
    tokens = dispatch.runtime_tokens
    try:
        tokens.block_until_ready()  # clears them when every token is fine
    except Exception:  # a token left in an error state by an earlier failure: drop it
        tokens.clear()


@contextlib.contextmanager
def clean_slate() -> Iterator[None]:
    """Run the body with a fresh TPU interpreter and no runtime token from before it."""
    settle_runtime_tokens()
    pltpu.reset_tpu_interpret_mode_state()
    try:
        yield
    finally:
        settle_runtime_tokens()
