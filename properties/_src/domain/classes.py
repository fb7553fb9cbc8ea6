"""The contract's dimensions and the relations between them, as named classes of shapes.

A ``Dimension`` splits every static shape (``Bucket``) into classes, each shape in exactly one:
the classes of one argument (page size, columns, cache dtype, ...) or of a relation between
several that implementations branch on (tokens against a page, tokens against columns, cache
rows against the slice table's range, ...). The pool is built so that every pair of classes
from two paired dimensions occurs in some shape where the domain and the pool's costs allow
(``covering``), and a run reports which classes its examples reached (``coverage_labels``).
The exact dtypes are dimensions too, unpaired: each must occur once, their widths and kinds
are what pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from properties._src.domain.buckets import DTYPES, INDEX_DTYPES, Bucket

MiB = 2**20
BLOCK = 8  # the columns a Pallas kernel's grid step takes (vLLM, this project), padded to it


@dataclass(frozen=True)
class Dimension:
    """A named split of the shapes into ``classes``: ``of`` says which one a shape is in.
    ``paired``: the pool covers every pair of its classes with another paired dimension's;
    otherwise each class only needs to occur."""

    name: str
    classes: tuple[str, ...]
    of: Callable[[Bucket], str]
    relation: bool = False
    paired: bool = True

    def label(self, value: str) -> str:
        """``dimension: class``, as events, coverage and docs name a class."""
        return f"{self.name}: {value}"

    def holds(self, value: str) -> Callable[[Bucket], bool]:
        """The test that a shape is in class ``value``."""
        return lambda bucket: self.of(bucket) == value


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _page_size(b: Bucket) -> str:
    if b.page_size == 1:
        return "1"
    if b.page_size > 256:
        return "over 256"
    return "a power of two" if _power_of_two(b.page_size) else "not a power of two"


def _pages(b: Bucket) -> str:
    return "one" if b.num_pages == 1 else "2 to 256" if b.num_pages <= 256 else "over 256"


def _cache_rows(b: Bucket) -> str:
    rows = b.cache_rows
    return "up to 2^15" if rows <= 2**15 else "past 2^15" if rows <= 2**24 else "past 2^24"


def _heads(b: Bucket) -> str:
    return "1" if b.heads == 1 else "odd" if b.heads % 2 else "even"


def _head_dim(b: Bucket) -> str:
    if b.head_dim == 1:
        return "1"
    return "a multiple of 128" if b.head_dim % 128 == 0 else "not a multiple of 128"


def _tokens(b: Bucket) -> str:
    return "none" if b.num_tokens == 0 else "1 to 2048" if b.num_tokens <= 2048 else "over 2048"


def _columns(b: Bucket) -> str:
    c = b.num_slices
    if c == 0:
        return "none"
    bands = ((1, 8), (9, 512))
    return next((f"{low} to {high}" for low, high in bands if c <= high), "over 512")


def _width(dtype: str) -> str:
    return f"{8 * np.dtype(jnp.dtype(dtype)).itemsize}-bit"


def _kind(b: Bucket) -> str:
    kind = b.numpy_dtype.kind
    return "bool" if kind == "b" else "integer" if kind in "iu" else "float"


def _tokens_against_page(b: Bucket) -> str:
    if b.num_tokens == 0:
        return "none"
    if b.num_tokens == b.page_size:
        return "one page"
    return "fewer than a page" if b.num_tokens < b.page_size else "more than a page"


def _tokens_against_columns(b: Bucket) -> str:
    if not (b.num_tokens and b.num_slices):
        return "either none"
    if b.num_tokens == b.num_slices:
        return "equal"
    return "fewer tokens" if b.num_tokens < b.num_slices else "more tokens"


def _pages_needed(b: Bucket) -> str:
    needed = -(-b.num_tokens // b.page_size)
    return "more pages than columns" if needed > b.num_slices else "no more pages than columns"


def _writable(b: Bucket) -> str:
    """How many tokens one update of the shape can copy: bounded by its tokens, its columns'
    pages, its cache rows and the rows its slice table reaches."""
    most = min(b.num_tokens, b.num_slices * b.page_size, b.cache_rows, table_max(b) + 1)
    return "none" if most == 0 else "up to 2048" if most <= 2048 else "over 2048"


def _past(limit: int, value: int) -> str:
    return "past it" if value > limit else "within it"


def _packing(b: Bucket) -> str:
    itemsize = b.numpy_dtype.itemsize
    if itemsize >= 4:
        return "32-bit"
    return "whole words" if (b.head_dim * itemsize) % 4 == 0 else "a partial word"


def table_max(b: Bucket) -> int:
    """The largest value the slice table's dtype holds."""
    return int(np.iinfo(b.table_dtype).max)


def count_max(b: Bucket) -> int:
    """The largest value the count's dtype holds."""
    return int(np.iinfo(b.count_dtype).max)


INDEX_WIDTHS = ("8-bit", "16-bit", "32-bit")

DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("page size", ("1", "a power of two", "not a power of two", "over 256"), _page_size),
    Dimension("pages", ("one", "2 to 256", "over 256"), _pages),
    Dimension("cache rows", ("up to 2^15", "past 2^15", "past 2^24"), _cache_rows),
    Dimension("heads", ("1", "odd", "even"), _heads),
    Dimension("head_dim", ("1", "not a multiple of 128", "a multiple of 128"), _head_dim),
    Dimension("new tokens", ("none", "1 to 2048", "over 2048"), _tokens),
    Dimension("columns", ("none", "1 to 8", "9 to 512", "over 512"), _columns),
    Dimension("cache dtype width", INDEX_WIDTHS, lambda b: _width(b.dtype)),
    Dimension("cache dtype kind", ("float", "integer", "bool"), _kind),
    Dimension("slice-table dtype width", INDEX_WIDTHS, lambda b: _width(b.table_dtype)),
    Dimension("count dtype width", INDEX_WIDTHS, lambda b: _width(b.count_dtype)),
    Dimension("count shape", ("[1]", "[]"), lambda b: str(list(b.count_shape))),
)
"""The contract's arguments, each split into the classes implementations treat apart."""

RELATIONS: tuple[Dimension, ...] = tuple(
    Dimension(name, classes, of, relation=True)
    for name, classes, of in (
        (
            "tokens against a page",
            ("none", "fewer than a page", "one page", "more than a page"),
            _tokens_against_page,
        ),
        (
            "tokens against columns",
            ("either none", "equal", "fewer tokens", "more tokens"),
            _tokens_against_columns,
        ),
        (
            "pages the tokens need against columns",
            ("more pages than columns", "no more pages than columns"),
            _pages_needed,
        ),
        (
            "tokens against cache rows",
            ("more tokens than rows", "no more tokens than rows"),
            lambda b: ("no more" if b.num_tokens <= b.cache_rows else "more") + " tokens than rows",
        ),
        (
            "cache rows against the slice table's range",
            ("past it", "within it"),
            lambda b: _past(table_max(b), b.cache_rows),
        ),
        (
            "columns against the count's range",
            ("past it", "within it"),
            lambda b: _past(count_max(b), b.num_slices),
        ),
        ("packing along head_dim", ("32-bit", "whole words", "a partial word"), _packing),
        (
            "page bytes",
            ("up to 2 MiB", "over 2 MiB"),
            lambda b: "over 2 MiB" if b.page_size * b.row_bytes > 2 * MiB else "up to 2 MiB",
        ),
        (
            f"columns against a block of {BLOCK}",
            ("whole blocks", "a partial block"),
            lambda b: "a partial block" if b.num_slices % BLOCK else "whole blocks",
        ),
    )
)
"""Relations between arguments that implementations branch on: decode steps with fewer tokens
than a page, decode fast paths keyed on tokens == columns, index arithmetic in the table's
dtype, sub-32-bit values packed into 32-bit words, VMEM budgets per page, grid blocks."""

EXACT: tuple[Dimension, ...] = (
    Dimension("cache dtype", DTYPES, lambda b: b.dtype, paired=False),
    Dimension("slice-table dtype", INDEX_DTYPES, lambda b: b.table_dtype, paired=False),
    Dimension("count dtype", INDEX_DTYPES, lambda b: b.count_dtype, paired=False),
)
"""Each dtype the harness draws, by name: every one occurs in the pool (their widths and kinds
are what pairs with the other dimensions)."""

WRITABLE = Dimension(
    "tokens one update can write",
    ("none", "up to 2048", "over 2048"),
    _writable,
    relation=True,
    paired=False,
)
"""Whether a source can run past token 2047 (chunked token loops): each class only has to
occur, in a shape that writes rows."""

EVERY_DIMENSION = (*DIMENSIONS, *EXACT, *RELATIONS, WRITABLE)
PAIRED = tuple(d for d in EVERY_DIMENSION if d.paired)


def classes_of(bucket: Bucket) -> tuple[str, ...]:
    """The class ``bucket`` is in, for each of ``EVERY_DIMENSION`` in order."""
    return tuple(d.of(bucket) for d in EVERY_DIMENSION)


def labels_of(bucket: Bucket) -> tuple[str, ...]:
    """``dimension: class`` for each dimension, as a run's coverage counts them."""
    return tuple(d.label(d.of(bucket)) for d in EVERY_DIMENSION)


def every_label() -> tuple[str, ...]:
    """Every class of every dimension, as ``labels_of`` names them."""
    return tuple(d.label(c) for d in EVERY_DIMENSION for c in d.classes)
