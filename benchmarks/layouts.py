"""Update layouts a serving engine sees, built with ``kvcache.slot_mapping``.

Each layout is a batch of requests (block table, tokens already computed, tokens scheduled)
on a cache of ``num_pages`` pages; pages are handed out from one shuffled pool, so requests
land in random, disjoint pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kvcache.slot_mapping import slot_mapping


@dataclass(frozen=True)
class Layout:
    """One step's ``slice_indices``/``total_update_slices`` and every token's destination row."""

    name: str
    slice_indices: np.ndarray
    total_update_slices: np.ndarray
    rows: np.ndarray

    @property
    def num_tokens(self) -> int:
        return self.rows.shape[0]


def layout(name, requests, *, num_pages, page_size, rng) -> Layout:
    """``requests`` is a list of ``(computed, scheduled)``; each gets just the pages it needs."""
    sizes = [-(-(done + new) // page_size) for done, new in requests]
    if sum(sizes) > num_pages:
        raise ValueError(f"layout {name!r} needs {sum(sizes)} pages; the cache has {num_pages}")
    pool = iter(rng.permutation(num_pages))
    tables = [[int(next(pool)) for _ in range(size)] for size in sizes]
    computed = [done for done, _ in requests]
    scheduled = [new for _, new in requests]
    slice_indices, count = slot_mapping(tables, computed, scheduled, page_size=page_size)
    rows = [
        table[position // page_size] * page_size + position % page_size
        for table, (done, new) in zip(tables, requests, strict=True)
        for position in range(done, done + new)
    ]
    return Layout(name, slice_indices, count, np.array(rows, dtype=np.int32))


def decode_requests(count: int, page_size: int, rng) -> list[tuple[int, int]]:
    """``count`` requests scheduling one token each, after up to 4 pages of context."""
    return [(int(rng.integers(0, 4 * page_size)), 1) for _ in range(count)]


def serving_layouts(num_pages: int, page_size: int, seed: int = 0) -> list[Layout]:
    """Decode (256 one-token requests), prefill (4 x 1024 tokens from the start) and mixed
    (192 decode tokens plus 4 chunks of 512 tokens starting mid-page)."""
    rng = np.random.default_rng(seed)
    sizes = {"num_pages": num_pages, "page_size": page_size, "rng": rng}
    decode = decode_requests(256, page_size, rng)
    mixed = decode_requests(192, page_size, rng)
    mixed += [(int(rng.integers(1, 4 * page_size)) | 1, 512) for _ in range(4)]  # odd: mid-page
    return [
        layout("decode", decode, **sizes),
        layout("prefill", [(0, 1024)] * 4, **sizes),
        layout("mixed", mixed, **sizes),
    ]
