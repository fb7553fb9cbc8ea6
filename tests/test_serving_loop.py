"""A serving loop, step by step: requests arrive, prefill in chunks, decode, finish and free.

Hypothesis drives a small scheduler as a state machine. Each ``step`` builds the update a
serving runner would (``kvcache.slot_mapping``) and runs it through the implementation under
test and the oracle. After every step the implementation's cache must equal the oracle's bit
for bit, and every live request's pages must hold exactly the tokens it wrote, so a step that
touches another request's rows fails at once. Freed pages go to the front of the free list,
so the next request reuses them. A failure prints the shortest sequence of steps found, e.g.
``r = state.arrive(prompt=5); state.step(budget=3); state.finish(request=r)``.

Shapes are fixed (one cache, ``NUM_TOKENS`` token rows, ``NUM_SLICES`` columns), so every
step reuses one compiled function.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kvcache.slot_mapping import padded_slice_count, slot_mapping
from oracle.contract import Update
from oracle.reference import reference_update
from properties._src.cases import bits, differing_rows
from properties._src.implementations import Implementation, call

PAGE_SIZE = 4
NUM_PAGES = 8
PAGES_PER_REQUEST = 4  # the block table's width: a request holds at most 16 tokens
MAX_REQUESTS = 3
NUM_TOKENS = 8  # the token bucket every step is padded to
NUM_SLICES = padded_slice_count(MAX_REQUESTS, NUM_TOKENS, PAGE_SIZE)
ROW_SHAPE = (2, 2)  # [K0, V0] heads of head_dim 2
MAX_TOKENS = PAGES_PER_REQUEST * PAGE_SIZE


@dataclass
class Request:
    """One request: its prompt length, its pages and the token id written at each position."""

    prompt: int
    pages: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)

    @property
    def computed(self) -> int:
        return len(self.written)

    def wants(self) -> int:
        """Tokens it would take this step: the rest of its prompt, or one to decode."""
        if self.computed < self.prompt:
            return self.prompt - self.computed
        return 1 if self.computed < MAX_TOKENS else 0


def rows_of(token_ids: list[int]) -> np.ndarray:
    """Cache rows holding the given token ids: every element of row ``i`` is ``token_ids[i]``."""
    ids = np.asarray(token_ids, dtype=np.float32).reshape(-1, 1, 1)
    return np.broadcast_to(ids, (len(token_ids), *ROW_SHAPE)).copy()


class ServingLoop(RuleBasedStateMachine):
    """The scheduler: decodes first, then prefill chunks in arrival order, within a budget."""

    implementation: Implementation
    requests = Bundle("requests")

    def __init__(self):
        super().__init__()
        self.live: dict[int, Request] = {}
        self.arrivals = 0
        self.next_token_id = 1
        self.free_pages = list(range(NUM_PAGES))
        empty = -np.arange(1, NUM_PAGES * PAGE_SIZE + 1, dtype=np.float32)
        self.oracle_cache = np.broadcast_to(empty.reshape(-1, 1, 1), (empty.size, *ROW_SHAPE))
        self.cache = self.oracle_cache.copy()

    @precondition(lambda self: len(self.live) < MAX_REQUESTS)
    @rule(target=requests, prompt=st.integers(1, MAX_TOKENS))
    def arrive(self, prompt: int) -> int:
        request_id = self.arrivals
        self.arrivals += 1
        self.live[request_id] = Request(prompt)
        return request_id

    @precondition(lambda self: self.live)
    @rule(budget=st.integers(1, NUM_TOKENS))
    def step(self, budget: int) -> None:
        """Schedule up to ``budget`` tokens, run one update, and compare with the oracle."""
        order = sorted(self.live.items(), key=lambda item: item[1].computed < item[1].prompt)
        scheduled = []
        for _, request in order:
            take = min(request.wants(), budget, self._room(request))
            self._allocate(request, request.computed + take)
            scheduled.append(take)
            budget -= take
        requests = [request for _, request in order]
        update = self._update(requests, scheduled)
        self.cache = call(self.implementation, update)
        on_oracle = dataclasses.replace(update, kv_cache_pages=self.oracle_cache)
        self.oracle_cache = reference_update(*on_oracle.arrays(), page_size=PAGE_SIZE)
        rows = differing_rows(self.oracle_cache, self.cache)
        assert rows.size == 0, f"{self.implementation}: cache rows {rows.tolist()} differ"
        self._check_each_request_holds_its_tokens()

    @rule(request=consumes(requests))
    def finish(self, request: int) -> None:
        """The request is done: its pages go to the front of the free list, to be reused."""
        self.free_pages[:0] = self.live.pop(request).pages

    def _check_each_request_holds_its_tokens(self) -> None:
        for request_id, request in self.live.items():
            positions = np.arange(request.computed)
            pages = np.asarray(request.pages, dtype=np.int64)
            rows = pages[positions // PAGE_SIZE] * PAGE_SIZE + positions % PAGE_SIZE
            wrong = np.flatnonzero(
                (bits(self.cache[rows]) != bits(rows_of(request.written))).any(axis=(1, 2))
            )
            assert wrong.size == 0, (
                f"request {request_id}: positions {wrong.tolist()} "
                f"(cache rows {rows[wrong].tolist()}) do not hold its tokens"
            )

    def _room(self, request: Request) -> int:
        """How many more tokens its pages, plus the free pages it may still take, can hold."""
        pages = min(PAGES_PER_REQUEST, len(request.pages) + len(self.free_pages))
        return pages * PAGE_SIZE - request.computed

    def _allocate(self, request: Request, tokens: int) -> None:
        while len(request.pages) * PAGE_SIZE < tokens:
            request.pages.append(self.free_pages.pop(0))

    def _update(self, requests: list[Request], scheduled: list[int]) -> Update:
        """The step's update; records each request's new token ids in the model."""
        slice_indices, count = slot_mapping(
            [r.pages for r in requests],
            [r.computed for r in requests],
            scheduled,
            page_size=PAGE_SIZE,
            num_tokens=NUM_TOKENS,
            num_slices=NUM_SLICES,
        )
        token_ids = []
        for request, take in zip(requests, scheduled, strict=True):
            new = list(range(self.next_token_id, self.next_token_id + take))
            self.next_token_id += take
            request.written.extend(new)
            token_ids.extend(new)
        padding = [-1e9] * (NUM_TOKENS - len(token_ids))  # never copied
        return Update(rows_of(token_ids + padding), slice_indices, self.cache, count, PAGE_SIZE)


def test_serving_loop(kvcache_implementation):
    machine = type("ServingLoop", (ServingLoop,), {"implementation": kvcache_implementation})
    budget = settings(
        max_examples=max(1, settings.default.max_examples // 2), stateful_step_count=25
    )
    run_state_machine_as_test(machine, settings=budget)
