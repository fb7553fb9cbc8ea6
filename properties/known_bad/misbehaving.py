"""Implementations that misbehave as a process, not as a result: targets for
``kvcache-check``'s supervision, never code to use.

A segfault (as a broken native kernel or custom call can cause), a hang, a raise, and a slow
but correct one (which must pass under the default ``--timeout``). They are not in
``KNOWN_BAD``: the in-process quality gate would die on the first two. ``MISBEHAVING`` names
them all as ``MODULE:ATTR``, ready for ``kvcache-check --impl``.
"""

from __future__ import annotations

import ctypes
import threading
import time

from kvcache import kv_cache_update_jax

SLOW_SECONDS = 0.2  # per call: slow enough to notice, far below the default timeout


def segfaulting(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """Reads address 0: the process dies of SIGSEGV."""
    return ctypes.string_at(0)


def hanging(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """Waits for an event nobody sets: never returns."""
    threading.Event().wait()


def raising(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
    """Raises on every call."""
    raise RuntimeError("this implementation always raises")


def slow_but_correct(
    new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size
):
    """Sleeps ``SLOW_SECONDS``, then updates correctly."""
    time.sleep(SLOW_SECONDS)
    return kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
    )


MISBEHAVING: tuple[str, ...] = tuple(
    f"{__name__}:{f.__name__}" for f in (segfaulting, hanging, raising, slow_but_correct)
)
