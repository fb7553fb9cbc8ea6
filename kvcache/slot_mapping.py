"""Build ``slice_indices`` from a block table, the way serving runners do.

Each request owns a list of cache pages (its block table row), has ``computed`` tokens
already in the cache and ``scheduled`` new tokens this step. Its new tokens go to logical
positions ``computed .. computed + scheduled - 1``, one slice per page touched: the first
starts at ``computed % page_size``, middle slices are whole pages, the last ends at
``(end - 1) % page_size + 1``. Sources are packed in request order; columns after the real
ones are ``(0, 0, 0)``. Padding the tokens to a bucket (``num_tokens``) pads the columns to
``padded_slice_count`` of that bucket, so every step in the bucket has the same shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def padded_slice_count(num_requests: int, num_tokens: int, page_size: int) -> int:
    """The column count serving runners pad to: ``min(2 * requests + tokens // page_size, tokens)``."""
    return min(2 * num_requests + num_tokens // page_size, num_tokens)


def request_slices(
    block_table: Sequence[int], computed: int, scheduled: int, page_size: int
) -> list[tuple[int, int]]:
    """``(cache start, length)`` for each page one request's new tokens touch, in order."""
    end = computed + scheduled
    if computed < 0 or scheduled < 0:
        raise ValueError(f"computed {computed} and scheduled {scheduled} must be >= 0")
    if end > len(block_table) * page_size:
        raise ValueError(
            f"{end} tokens need {-(-end // page_size)} pages; the block table has {len(block_table)}"
        )
    slices = []
    position = computed
    while position < end:
        page, offset = divmod(position, page_size)
        length = min(page_size - offset, end - position)
        slices.append((int(block_table[page]) * page_size + offset, length))
        position += length
    return slices


def slot_mapping(
    block_tables: Sequence[Sequence[int]],
    computed: Sequence[int],
    scheduled: Sequence[int],
    *,
    page_size: int,
    num_tokens: int | None = None,
    num_slices: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(slice_indices [3, num_slices] int32, total_update_slices [1] int32)`` for one step.

    ``num_tokens`` is the row count the step's new tokens are padded to (a bucket; default:
    exactly the scheduled tokens). ``num_slices`` defaults to ``padded_slice_count`` of the
    requests and ``num_tokens``, so steps in one token bucket share one shape. A layout that
    needs more columns or tokens than given raises ``ValueError``.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    columns = []
    source = 0
    for table, done, new in zip(block_tables, computed, scheduled, strict=True):
        for destination, length in request_slices(table, done, new, page_size):
            columns.append((destination, source, length))
            source += length
    if num_tokens is None:
        num_tokens = source
    if source > num_tokens:
        raise ValueError(f"{source} tokens are scheduled; num_tokens is {num_tokens}")
    if num_slices is None:
        num_slices = max(padded_slice_count(len(block_tables), num_tokens, page_size), 1)
    if len(columns) > num_slices:
        raise ValueError(f"the layout needs {len(columns)} slices; num_slices is {num_slices}")
    slice_indices = np.zeros((3, num_slices), dtype=np.int32)
    if columns:
        slice_indices[:, : len(columns)] = np.array(columns, dtype=np.int32).T
    return slice_indices, np.array([len(columns)], dtype=np.int32)
