"""Shape constraints: what an implementation's layout requires, so the harness draws only
fitting shapes instead of a user padding by hand (``--constraint head_dim%128``).

A constraint is ``DIMENSION%DIVISOR``: the dimension must be a multiple of the divisor; or
``FIELD=DTYPE``: the cache's, the slice table's or the count's dtype must be that one
(``dtype=bfloat16``, ``table_dtype=int32``), or one of those several constraints on the field
name. ``in_force`` reads them (and a mesh's) for a run; ``fitting`` fits a pool of shapes to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from properties._src.domain.buckets import BUCKETS, DTYPES, INDEX_DTYPES, Bucket
from properties._src.domain.constraint_syntax import DIMENSIONS, DTYPE_FIELDS

# Memory bounds on a drawn shape: the cache, and one page (the kernel's VMEM scratch holds 8).
# Pages may pass 2 MiB, where kernels that size VMEM by a 16 MiB budget run out of slots.
MAX_CACHE_BYTES = 2**27
MAX_PAGE_BYTES = 2**22
# The rest of the domain a shape is drawn from (``shapes.any_bucket``).
MAX_HEADS, MAX_HEAD_DIM, MAX_PAGE_SIZE, MAX_TOKENS, MAX_COLUMNS = 72, 640, 2048, 5000, 1100
MAX_TOKEN_BYTES = 2**23

# The dtypes each field of ``DTYPE_FIELDS`` can be constrained to: those the harness draws.
FIELD_DTYPES = {"dtype": DTYPES, "table_dtype": INDEX_DTYPES, "count_dtype": INDEX_DTYPES}


@dataclass(frozen=True)
class Constraint:
    """``dimension`` must be a multiple of ``divisor``; or, with a ``dtype``, the dtype field
    ``dimension`` (one of ``DTYPE_FIELDS``) must be that dtype or, where other constraints
    name the same field, one of theirs (``dtypes_allowed``)."""

    dimension: str
    divisor: int = 1
    dtype: str | None = None

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``"head_dim%128"`` or ``"table_dtype=int32"`` to a ``Constraint``, or
        ``ValueError`` saying what is wrong."""
        text = text.replace(" ", "")
        field, equals, dtype = text.partition("=")
        if equals:
            if field not in DTYPE_FIELDS:
                raise ValueError(
                    f"constraint {text!r}: expected FIELD=DTYPE with FIELD one of "
                    f"{', '.join(DTYPE_FIELDS)}"
                )
            if dtype not in FIELD_DTYPES[field]:
                raise ValueError(
                    f"constraint {text!r}: {field} must be one of {', '.join(FIELD_DTYPES[field])}"
                )
            return cls(field, dtype=dtype)
        dimension, separator, divisor = text.partition("%")
        if not separator or dimension not in DIMENSIONS:
            raise ValueError(
                f"constraint {text!r}: expected DIMENSION%DIVISOR with DIMENSION one of "
                f"{', '.join(DIMENSIONS)}, or FIELD=DTYPE with FIELD one of "
                f"{', '.join(DTYPE_FIELDS)}"
            )
        if not divisor.isdigit() or int(divisor) < 1:
            raise ValueError(f"constraint {text!r}: the divisor must be a positive integer")
        return cls(dimension, int(divisor))

    def admits(self, bucket: Bucket) -> bool:
        """Whether ``bucket``'s dimension is a multiple of the divisor (a dtype constraint is
        read with the others on its field: ``admitted``)."""
        return (
            self.dtype is not None
            or getattr(bucket, DIMENSIONS[self.dimension]) % self.divisor == 0
        )

    def fit(self, bucket: Bucket) -> Bucket:
        """``bucket`` with the dimension rounded up to a multiple of the divisor (a dtype
        constraint leaves it as it is: ``fitting`` sets the dtypes)."""
        if self.dtype is not None:
            return bucket
        value = getattr(bucket, DIMENSIONS[self.dimension])
        fitted = -(-value // self.divisor) * self.divisor
        return replace(bucket, **{DIMENSIONS[self.dimension]: fitted})

    def __str__(self) -> str:
        if self.dtype is not None:
            return f"{self.dimension}={self.dtype}"
        return f"{self.dimension}%{self.divisor}"


def parse_all(constraints: Iterable[str | Constraint]) -> tuple[Constraint, ...]:
    """Constraints from their text (or themselves), in order, without repeats."""
    parsed = (c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints)
    return tuple(dict.fromkeys(parsed))


def in_force(
    given: Iterable[str | Constraint], required: Iterable[Constraint] = ()
) -> tuple[Constraint, ...]:
    """The constraints a run draws under: those ``given`` (text or parsed) then those
    ``required`` (a mesh's), in order, without repeats; ``ValueError`` if one is malformed or
    together they leave no shape of the pool. Every option, flag and argument that names
    constraints is read here."""
    constraints = parse_all((*given, *required))
    fitting(BUCKETS, constraints)
    return constraints


def dtypes_allowed(field: str, constraints: tuple[Constraint, ...]) -> tuple[str, ...]:
    """The dtypes ``field`` (one of ``DTYPE_FIELDS``) may take under ``constraints``: those its
    constraints name (any of them), or every one the harness draws where none does."""
    named = {c.dtype for c in constraints if c.dtype is not None and c.dimension == field}
    return tuple(d for d in FIELD_DTYPES[field] if not named or d in named)


def admitted(bucket: Bucket, constraints: tuple[Constraint, ...]) -> bool:
    """Whether ``bucket`` meets every divisor and has a dtype each constrained field allows."""
    return all(c.admits(bucket) for c in constraints) and all(
        getattr(bucket, attribute) in dtypes_allowed(field, constraints)
        for field, attribute in DTYPE_FIELDS.items()
    )


def within_memory(bucket: Bucket) -> bool:
    """Whether the cache and one page fit the memory bounds."""
    page_bytes = bucket.page_size * bucket.row_bytes
    return page_bytes <= MAX_PAGE_BYTES and page_bytes * bucket.num_pages <= MAX_CACHE_BYTES


def in_domain(bucket: Bucket) -> bool:
    """Whether ``shapes.any_bucket`` can draw ``bucket`` (constraints aside): within the memory
    bounds and each ``MAX_*``, with a slice table whose dtype holds a page's length."""
    return (
        within_memory(bucket)
        and bucket.page_size <= min(MAX_PAGE_SIZE, np.iinfo(bucket.table_dtype).max)
        and bucket.heads <= MAX_HEADS
        and bucket.head_dim <= MAX_HEAD_DIM
        and bucket.num_tokens <= MAX_TOKENS
        and bucket.num_tokens * bucket.row_bytes <= MAX_TOKEN_BYTES
        and bucket.num_slices <= MAX_COLUMNS
    )


def _with_dtypes_allowed(bucket: Bucket, constraints: tuple[Constraint, ...], turn: int) -> Bucket:
    """``bucket`` with each dtype its field does not allow replaced by an allowed one, taken
    in turn (``turn``: the bucket's place in its pool), so a pool keeps every allowed dtype."""
    for field, attribute in DTYPE_FIELDS.items():
        allowed = dtypes_allowed(field, constraints)
        if getattr(bucket, attribute) not in allowed:
            fixed: dict[str, Any] = {attribute: allowed[turn % len(allowed)]}
            bucket = replace(bucket, **fixed)
    return bucket


def fitting(buckets: tuple[Bucket, ...], constraints: tuple[Constraint, ...]) -> tuple[Bucket, ...]:
    """Each bucket with every constrained dimension rounded up to a multiple of its divisor
    and every constrained dtype field given one it allows, in order, without repeats, leaving
    out those the rounding takes past the memory bounds (so the pool keeps its classes wherever
    the constraints allow them), with a wider slice table where the rounded page's length
    outgrows the table's dtype (int32 where allowed; leaving out those whose page outgrows
    every allowed table); ``ValueError`` if none is left."""
    tables = dtypes_allowed("table_dtype", constraints)
    fitted = []
    for turn, bucket in enumerate(buckets):
        bucket = _with_dtypes_allowed(bucket, constraints, turn)
        while not admitted(bucket, constraints):  # rises to a common multiple
            for constraint in constraints:
                bucket = constraint.fit(bucket)
        holding = [t for t in tables if bucket.page_size <= np.iinfo(t).max]
        if bucket.page_size > np.iinfo(bucket.table_dtype).max and holding:  # a length must fit
            bucket = replace(bucket, table_dtype="int32" if "int32" in holding else holding[0])
        if within_memory(bucket) and bucket.page_size <= np.iinfo(bucket.table_dtype).max:
            fitted.append(bucket)
    if not fitted:
        raise ValueError(
            f"no shape satisfies {', '.join(map(str, constraints))} within "
            f"{MAX_CACHE_BYTES} bytes of cache and with a slice table whose dtype holds a "
            "page's length: nothing could be checked"
        )
    return tuple(dict.fromkeys(fitted))
