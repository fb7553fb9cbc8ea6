"""A serving loop, step by step: requests arrive, prefill in chunks, decode, finish and free.

Hypothesis drives a small scheduler as a state machine. Each ``step`` builds the update a
serving runner would (``kvcache.slot_mapping``) and runs it through the implementation under
test (eagerly or under ``jax.jit`` with a donated cache, as drawn) and the oracle. After every
step the implementation's cache must equal the oracle's bit for bit, and every live request's
pages must hold exactly the tokens it wrote, so a step that touches another request's rows
fails at once. Freed pages go to the front of the free list, so the next request reuses them.

Every step runs on one cache, ``loop_shape``'s (pages, page size, heads, head_dim, dtype,
count shape): the first shape of the run's pool that holds a serving step, so the loop honours
the shape constraints. As a runner does, each step pads its tokens to the smallest of the
runner's token buckets that holds them (``Runner``: powers of two, as vLLM's TPU runner's
``_get_token_paddings``, scaled to the cache) and its slice table to the column count that goes
with the bucket (``padded_slice_count``: ``min(2 * max_num_reqs + T // page_size, T)``), so
consecutive steps share the cache and differ in tokens and columns, and steps in one bucket
reuse one compiled program per calling mode. The first bucket holds fewer tokens than a page
(a decode step of fewer requests than a page holds) and in the small buckets tokens equal
columns. The scheduler runs a step only when it schedules a token. Token ids are written as
bit patterns, so every dtype holds them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kvcache.slot_mapping import padded_slice_count, slot_mapping
from oracle.contract import Tier, Update
from oracle.reference import reference_update
from properties._src.calling.implementations import Implementation
from properties._src.cases.run_config import PYTEST_RUN, RunConfig
from properties._src.cases.sequence_case import SequenceCase, budget, pool
from properties._src.domain.buckets import Bucket
from properties._src.domain.constraints import Constraint, fitting
from properties._src.drawing.shapes import for_tier
from properties._src.judging.checks import MATCHES_ORACLE, bits
from properties._src.judging.steps import MODES, Judge, Step

PAGES_PER_REQUEST = 4  # the block table's width
MAX_REQUESTS = 3
STEPS_PER_RUN = 25


@dataclass(frozen=True)
class Runner:
    """A serving runner's static shapes on one cache (``cache``: its page size, pages, heads,
    head_dim, dtype and count shape; its tokens and columns unused): the token buckets, and for
    each the column count its slice table is padded to, fitted to ``constraints``."""

    cache: Bucket
    constraints: tuple[Constraint, ...] = ()

    @property
    def token_buckets(self) -> tuple[int, ...]:
        """Powers of two from the largest at most half a page (at least 1) up to the first
        that holds the most tokens a step can schedule (every live request's whole block
        table, within the cache): vLLM's TPU runner starts at 16 tokens for pages of 16 to
        128 or more, so its first bucket holds a page or less."""
        page_size = self.cache.page_size
        most = min(MAX_REQUESTS * PAGES_PER_REQUEST * page_size, self.cache.cache_rows)
        sizes = [1 << (max(page_size // 2, 1).bit_length() - 1)]
        while sizes[-1] < most:
            sizes.append(2 * sizes[-1])
        return tuple(sizes)

    def shape(self, tokens: int) -> Bucket:
        """The static shape of a step of ``tokens`` new tokens: the smallest bucket that holds
        them and its padded column count, ``min(2 * max_num_reqs + T // page_size, T)``."""
        bucket = next(size for size in self.token_buckets if size >= tokens)
        columns = padded_slice_count(MAX_REQUESTS, bucket, self.cache.page_size)
        shape = dataclasses.replace(self.cache, num_tokens=bucket, num_slices=columns)
        return fitting((shape,), self.constraints)[0]


def rows_of(bucket: Bucket, token_ids) -> np.ndarray:
    """Rows of ``bucket``'s shape holding the given ids: every element of row ``i`` has
    ``token_ids[i]``'s bits (modulo the dtype's width)."""
    dtype = bucket.numpy_dtype
    unsigned = np.dtype(f"u{dtype.itemsize}")
    ids = np.asarray(token_ids, dtype=np.int64) % (1 << (8 * unsigned.itemsize))
    shape = (len(ids), bucket.heads, bucket.head_dim)
    return np.broadcast_to(ids.astype(unsigned).reshape(-1, 1, 1), shape).copy().view(dtype)


@dataclass
class Request:
    """One request: its prompt length, its pages and the token id written at each position."""

    prompt: int
    max_tokens: int
    pages: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)

    @property
    def computed(self) -> int:
        return len(self.written)

    def wants(self) -> int:
        """Tokens it would take this step: the rest of its prompt, or one to decode."""
        if self.computed < self.prompt:
            return self.prompt - self.computed
        return 1 if self.computed < self.max_tokens else 0


class ServingLoop(RuleBasedStateMachine):
    """The scheduler: decodes first, then prefill chunks in arrival order, within a budget.

    ``ServingLoopCase.build`` makes a subclass with the judge (which runs the implementation),
    the runner and ``observe``."""

    judge: Judge
    runner: Runner
    observe: Callable[[list[Step]], None] | None = None
    requests = Bundle("requests")

    def __init__(self):
        super().__init__()
        self.bucket = self.runner.cache
        self.live: dict[int, Request] = {}
        self.arrivals = 0
        self.next_token_id = 1
        self.free_pages = list(range(self.bucket.num_pages))
        self.oracle_cache = rows_of(self.bucket, -np.arange(1, self.bucket.cache_rows + 1))
        self.cache = self.oracle_cache.copy()
        self.steps: list[Step] = []
        if self.observe is not None:
            self.observe(self.steps)

    @initialize(target=requests, data=st.data(), mode=MODES)
    def first_request(self, data: st.DataObject, mode: str) -> int:
        """Every run starts with a request and a step, so it calls the implementation."""
        request_id = self._arrive(data)
        self.step(data, mode)
        return request_id

    @precondition(lambda self: len(self.live) < MAX_REQUESTS)
    @rule(target=requests, data=st.data())
    def arrive(self, data: st.DataObject) -> int:
        return self._arrive(data)

    def _arrive(self, data: st.DataObject) -> int:
        request_id = self.arrivals
        self.arrivals += 1
        max_tokens = PAGES_PER_REQUEST * self.bucket.page_size
        prompt = data.draw(st.integers(1, max_tokens), label="prompt")
        self.live[request_id] = Request(prompt, max_tokens)
        return request_id

    @precondition(lambda self: self._schedulable())
    @rule(data=st.data(), mode=MODES)
    def step(self, data: st.DataObject, mode: str) -> None:
        """Schedule up to a drawn budget of tokens, run one update, compare with the oracle.
        Only when a request can take a token: a runner never runs a step with nothing
        scheduled, so every step has a real column and a new token (``step-nonempty``). The
        step's bucket's columns hold its slices: a request's tokens touch at most
        ``2 + tokens // page_size`` pages."""
        budget = data.draw(st.integers(1, self.runner.token_buckets[-1]), label="budget")
        order = sorted(self.live.items(), key=lambda item: item[1].computed < item[1].prompt)
        scheduled = []
        for _, request in order:
            take = min(request.wants(), budget, self._room(request))
            self._allocate(request, request.computed + take)
            scheduled.append(take)
            budget -= take
        update = self._update([request for _, request in order], scheduled)
        shape = Bucket.of(update)
        label = (
            f"step {len(self.steps) + 1}: {len(order)} requests, {sum(scheduled)} tokens "
            f"in a bucket of {shape.num_tokens} tokens and {shape.num_slices} columns"
        )
        self.steps.append(Step(update, mode, label))
        on_oracle = dataclasses.replace(update, kv_cache_pages=self.oracle_cache)
        self.oracle_cache = reference_update(*on_oracle.arrays(), page_size=self.bucket.page_size)
        self.cache = self.judge(self.steps[-1], MATCHES_ORACLE, self.steps[:-1])
        self._check_each_request_holds_its_tokens()

    @rule(request=consumes(requests))
    def finish(self, request: int) -> None:
        """The request is done: its pages go to the front of the free list, to be reused."""
        self.free_pages[:0] = self.live.pop(request).pages

    def _check_each_request_holds_its_tokens(self) -> None:
        page_size = self.bucket.page_size
        for request_id, request in self.live.items():
            positions = np.arange(request.computed)
            pages = np.asarray(request.pages, dtype=np.int64)
            rows = pages[positions // page_size] * page_size + positions % page_size
            expected = rows_of(self.bucket, request.written)
            wrong = np.flatnonzero((bits(self.cache[rows]) != bits(expected)).any(axis=(1, 2)))
            assert wrong.size == 0, (
                f"{self.steps[-1]}: request {request_id}: positions {wrong.tolist()} "
                f"(cache rows {rows[wrong].tolist()}) do not hold its tokens"
            )

    def _schedulable(self) -> bool:
        """Whether some live request wants a token and has room for it."""
        return any(r.wants() and self._room(r) for r in self.live.values())

    def _room(self, request: Request) -> int:
        """How many more tokens its pages, plus the free pages it may still take, can hold."""
        pages = min(PAGES_PER_REQUEST, len(request.pages) + len(self.free_pages))
        return pages * self.bucket.page_size - request.computed

    def _allocate(self, request: Request, tokens: int) -> None:
        while len(request.pages) * self.bucket.page_size < tokens:
            request.pages.append(self.free_pages.pop(0))

    def _update(self, requests: list[Request], scheduled: list[int]) -> Update:
        """The step's update, in its bucket's shape; records each request's new token ids in
        the model."""
        bucket = self.runner.shape(sum(scheduled))
        slice_indices, count = slot_mapping(
            [r.pages for r in requests],
            [r.computed for r in requests],
            scheduled,
            page_size=bucket.page_size,
            num_tokens=bucket.num_tokens,
            num_slices=bucket.num_slices,
        )
        token_ids = []
        for request, take in zip(requests, scheduled, strict=True):
            new = list(range(self.next_token_id, self.next_token_id + take))
            self.next_token_id += take
            request.written.extend(new)
            token_ids.extend(new)
        padding = [0] * (bucket.num_tokens - len(token_ids))  # never copied
        tokens = rows_of(bucket, token_ids + padding)
        count = count.reshape(bucket.count_shape)
        return Update(tokens, slice_indices, self.cache, count, bucket.page_size)


def loop_shape(config: RunConfig) -> Bucket:
    """The serving loop's cache (its token and column counts unused: ``Runner`` sets them):
    the first shape of the run's pool (from ``buckets.SHRINK_TARGET``, fitted to the run's
    constraints; a pool given by hand: its first) that holds a serving step."""
    return for_tier(pool(config), Tier.SERVING)[0]


@dataclass(frozen=True)
class ServingLoopCase(SequenceCase):
    """Runs of the serving loop; each run's steps are recorded for replay."""

    def build(
        self, implementation: Implementation, config: RunConfig = PYTEST_RUN
    ) -> Callable[[], None]:
        machine = type(
            "ServingLoop",
            (ServingLoop,),
            {
                "judge": staticmethod(config.judge_for(implementation)),
                "runner": Runner(loop_shape(config), config.constraints),
                "observe": staticmethod(config.observe) if config.observe else None,
            },
        )
        # Each run is many steps: half the examples, STEPS_PER_RUN steps at most.
        run_settings = budget(config, share=2)
        run_settings = type(run_settings)(run_settings, stateful_step_count=STEPS_PER_RUN)

        def test() -> None:
            run_state_machine_as_test(machine, settings=run_settings)

        test.__name__ = self.id.replace("-", "_")
        return test


SERVING_LOOP = ServingLoopCase("serving-loop", Tier.SERVING)
