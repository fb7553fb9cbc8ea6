"""The contract of the paged KV-cache update, as named rules.

Each rule checks one thing and reports every column (or argument) that breaks it, so a
caller can say exactly what is wrong and where. Rules come in three tiers:

* ``ARGUMENTS``: the arguments are well formed (ranks, shapes, dtypes, page size). These
  rules read only shapes and dtypes, so they also run at trace time on JAX tracers.
  Column rules are only meaningful once these hold.
* ``GENERAL``: what every implementation must accept and copy correctly.
* ``SERVING``: what serving runners produce; a subset of the general tier.

Only the first ``n = total_update_slices`` columns of ``slice_indices`` are subject to the
column rules; the columns after them are padding and may hold anything.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


class Tier(enum.IntEnum):
    """How strict a rule is; each tier includes the ones before it."""

    ARGUMENTS = 0
    GENERAL = 1
    SERVING = 2


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule, where (a column index or an argument name), and why."""

    rule: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.detail}"


class ContractViolation(ValueError):
    """Raised for input outside the contract; carries every violation found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("; ".join(str(v) for v in violations))

    @property
    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}


@dataclass(frozen=True)
class Update:
    """The four arrays and the page size of one update, as NumPy arrays."""

    new_kv_tokens: np.ndarray
    slice_indices: np.ndarray
    kv_cache_pages: np.ndarray
    total_update_slices: np.ndarray
    page_size: int

    @classmethod
    def of(cls, new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size):
        """Bring any array-likes (NumPy, JAX) to the host."""
        return cls(
            np.asarray(new_kv_tokens),
            np.asarray(slice_indices),
            np.asarray(kv_cache_pages),
            np.asarray(total_update_slices),
            page_size,
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The four arrays, in argument order: tokens, slice indices, cache, count."""
        return (
            self.new_kv_tokens,
            self.slice_indices,
            self.kv_cache_pages,
            self.total_update_slices,
        )

    @property
    def num_real_slices(self) -> int:
        """``n``: how many leading columns of ``slice_indices`` are real."""
        return int(self.total_update_slices.reshape(-1)[0])

    def columns(self) -> Iterator[tuple[int, int, int, int]]:
        """``(column, destination, source, length)`` for each real column, in order."""
        for column in range(min(self.num_real_slices, self.slice_indices.shape[1])):
            dst, src, length = (int(v) for v in self.slice_indices[:, column])
            yield column, dst, src, length


@dataclass(frozen=True)
class Rule:
    """A named, independently checkable part of the contract."""

    name: str
    tier: Tier
    text: str
    find: Callable[[Update], Iterator[Violation]]


RULES: dict[str, Rule] = {}


def _rule(name: str, tier: Tier, text: str):
    def register(find: Callable[[Update], Iterator[tuple[str, str]]]) -> Callable:
        def violations(update: Update) -> Iterator[Violation]:
            for where, detail in find(update):
                yield Violation(name, where, detail)

        RULES[name] = Rule(name, tier, text, violations)
        return find

    return register


def _col(column: int) -> str:
    return f"column {column}"


# --- Arguments -------------------------------------------------------------------------


@_rule("page-size", Tier.ARGUMENTS, "page_size is a positive integer")
def _page_size(u: Update):
    if isinstance(u.page_size, bool) or not isinstance(u.page_size, (int, np.integer)):
        yield "page_size", f"must be an int, got {type(u.page_size).__name__}"
    elif u.page_size < 1:
        yield "page_size", f"must be >= 1, got {u.page_size}"


@_rule("tokens-rank", Tier.ARGUMENTS, "new_kv_tokens is [tokens, heads, head_dim]")
def _tokens_rank(u: Update):
    if u.new_kv_tokens.ndim != 3:
        yield "new_kv_tokens", f"must be 3-D, got shape {u.new_kv_tokens.shape}"


@_rule("cache-rank", Tier.ARGUMENTS, "kv_cache_pages is [pages * page_size, heads, head_dim]")
def _cache_rank(u: Update):
    if u.kv_cache_pages.ndim != 3:
        yield "kv_cache_pages", f"must be 3-D, got shape {u.kv_cache_pages.shape}"


@_rule("same-layout", Tier.ARGUMENTS, "tokens and cache share heads, head_dim and dtype")
def _same_layout(u: Update):
    new, cache = u.new_kv_tokens, u.kv_cache_pages
    if new.ndim == 3 and cache.ndim == 3 and new.shape[1:] != cache.shape[1:]:
        yield "new_kv_tokens", f"[heads, head_dim] {new.shape[1:]} != cache's {cache.shape[1:]}"
    if new.dtype != cache.dtype:
        yield "new_kv_tokens", f"dtype {new.dtype} != cache dtype {cache.dtype}"


@_rule("whole-pages", Tier.ARGUMENTS, "the cache holds a whole number of pages")
def _whole_pages(u: Update):
    rows = u.kv_cache_pages.shape[0] if u.kv_cache_pages.ndim else 0
    if isinstance(u.page_size, (int, np.integer)) and u.page_size >= 1 and rows % u.page_size:
        yield "kv_cache_pages", f"{rows} rows is not a multiple of page_size {u.page_size}"


@_rule("indices-shape", Tier.ARGUMENTS, "slice_indices has shape [3, num_slices]")
def _indices_shape(u: Update):
    idx = u.slice_indices
    if idx.ndim != 2 or idx.shape[0] != 3:
        yield "slice_indices", f"must have shape [3, num_slices], got {idx.shape}"


@_rule("indices-dtype", Tier.ARGUMENTS, "slice_indices holds integers")
def _indices_dtype(u: Update):
    if not np.issubdtype(u.slice_indices.dtype, np.integer):
        yield "slice_indices", f"must be integer, got {u.slice_indices.dtype}"


@_rule("count-shape", Tier.ARGUMENTS, "total_update_slices has shape [1] or []")
def _count_shape(u: Update):
    if u.total_update_slices.shape not in ((), (1,)):
        yield "total_update_slices", f"must have shape [1] or [], got {u.total_update_slices.shape}"


@_rule("count-dtype", Tier.ARGUMENTS, "total_update_slices is an integer")
def _count_dtype(u: Update):
    if not np.issubdtype(u.total_update_slices.dtype, np.integer):
        yield "total_update_slices", f"must be integer, got {u.total_update_slices.dtype}"


# --- General tier: every implementation handles these ----------------------------------


@_rule("count-range", Tier.GENERAL, "0 <= total_update_slices <= num_slices")
def _count_range(u: Update):
    if u.total_update_slices.size != 1 or u.slice_indices.ndim != 2:
        return
    n, columns = u.num_real_slices, u.slice_indices.shape[1]
    if not 0 <= n <= columns:
        yield "total_update_slices", f"{n} is outside [0, {columns}]"


@_rule("starts-nonnegative", Tier.GENERAL, "cache and new-token starts are >= 0")
def _starts_nonnegative(u: Update):
    for column, dst, src, _ in u.columns():
        if dst < 0 or src < 0:
            yield _col(column), f"cache start {dst}, new-token start {src}"


@_rule("length-range", Tier.GENERAL, "0 <= length <= page_size")
def _length_range(u: Update):
    for column, _, _, length in u.columns():
        if not 0 <= length <= u.page_size:
            yield _col(column), f"length {length} is outside [0, {u.page_size}]"


@_rule("source-in-bounds", Tier.GENERAL, "new-token start + length <= number of new tokens")
def _source_in_bounds(u: Update):
    tokens = u.new_kv_tokens.shape[0]
    for column, _, src, length in u.columns():
        if src + max(length, 0) > tokens:
            yield _col(column), f"rows [{src}, {src + length}) run past {tokens} new tokens"


@_rule("destination-in-bounds", Tier.GENERAL, "cache start + length <= cache rows")
def _destination_in_bounds(u: Update):
    rows = u.kv_cache_pages.shape[0]
    for column, dst, _, length in u.columns():
        if dst + max(length, 0) > rows:
            yield _col(column), f"rows [{dst}, {dst + length}) run past {rows} cache rows"


@_rule("destinations-disjoint", Tier.GENERAL, "no cache row is written by two columns")
def _destinations_disjoint(u: Update):
    spans = sorted(
        (dst, dst + length, column) for column, dst, _, length in u.columns() if length > 0
    )
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        if start < end:
            yield _col(second), f"overlaps column {first} from cache row {start}"


# --- Serving tier: what serving runners produce -----------------------------------------


@_rule(
    "step-nonempty",
    Tier.SERVING,
    "a step has at least one real column and one new token: runners never call the update "
    "without requests, and pad the slice table to min(2 * requests + tokens // page_size, "
    "tokens) >= 1 columns",
)
def _step_nonempty(u: Update):
    if u.total_update_slices.size == 1 and u.num_real_slices < 1:
        yield "total_update_slices", f"{u.num_real_slices} real columns; a step has at least 1"
    if u.new_kv_tokens.shape[0] < 1:
        yield "new_kv_tokens", "no new tokens; a step has at least 1"


@_rule("length-positive", Tier.SERVING, "every real column copies at least one row")
def _length_positive(u: Update):
    for column, _, _, length in u.columns():
        if length < 1:
            yield _col(column), f"length {length} < 1"


@_rule("within-one-page", Tier.SERVING, "each slice stays inside one cache page")
def _within_one_page(u: Update):
    ps = u.page_size
    for column, dst, _, length in u.columns():
        if length > 0 and dst // ps != (dst + length - 1) // ps:
            yield (
                _col(column),
                f"rows [{dst}, {dst + length}) cross a page boundary (page_size {ps})",
            )


@_rule("sources-packed", Tier.SERVING, "new-token starts are the running sum of lengths from 0")
def _sources_packed(u: Update):
    expected = 0
    for column, _, src, length in u.columns():
        if src != expected:
            yield _col(column), f"new-token start {src}, expected {expected}"
        expected = src + length


def violations(update: Update, tier: Tier = Tier.GENERAL) -> list[Violation]:
    """Every violation of the rules up to ``tier``; column rules only if the arguments hold."""
    found = [v for rule in RULES.values() if rule.tier == Tier.ARGUMENTS for v in rule.find(update)]
    if found:
        return found
    return [
        v
        for rule in RULES.values()
        if Tier.ARGUMENTS < rule.tier <= tier
        for v in rule.find(update)
    ]


def require(update: Update, tier: Tier = Tier.GENERAL) -> None:
    """Raise ``ContractViolation`` naming every broken rule up to ``tier``."""
    found = violations(update, tier)
    if found:
        raise ContractViolation(found)
