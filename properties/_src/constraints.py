"""Shape constraints: what an implementation's layout requires, so the harness draws only
fitting shapes instead of a user padding by hand (``--constraint head_dim%128``).

A constraint is ``DIMENSION%DIVISOR``: the dimension must be a multiple of the divisor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from properties._src.buckets import Bucket

# What each dimension is, read off a static shape.
DIMENSIONS = {
    "heads": lambda b: b.heads,
    "head_dim": lambda b: b.head_dim,
    "page_size": lambda b: b.page_size,
    "columns": lambda b: b.num_slices,
    "tokens": lambda b: b.num_tokens,
    "pages": lambda b: b.num_pages,
}


@dataclass(frozen=True)
class Constraint:
    """``dimension`` must be a multiple of ``divisor``."""

    dimension: str
    divisor: int

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``"head_dim%128"`` to a ``Constraint``, or ``ValueError`` saying what is wrong."""
        dimension, separator, divisor = text.replace(" ", "").partition("%")
        if not separator or dimension not in DIMENSIONS:
            raise ValueError(
                f"constraint {text!r}: expected DIMENSION%DIVISOR with DIMENSION one of "
                f"{', '.join(DIMENSIONS)}"
            )
        if not divisor.isdigit() or int(divisor) < 1:
            raise ValueError(f"constraint {text!r}: the divisor must be a positive integer")
        return cls(dimension, int(divisor))

    def admits(self, bucket: Bucket) -> bool:
        return DIMENSIONS[self.dimension](bucket) % self.divisor == 0

    def __str__(self) -> str:
        return f"{self.dimension}%{self.divisor}"


def parse_all(constraints: Iterable[str | Constraint]) -> tuple[Constraint, ...]:
    """Constraints from their text (or themselves), in order, without repeats."""
    parsed = (c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints)
    return tuple(dict.fromkeys(parsed))


def admitted(bucket: Bucket, constraints: tuple[Constraint, ...]) -> bool:
    """Whether every constraint admits ``bucket``."""
    return all(c.admits(bucket) for c in constraints)


def fitting(buckets: tuple[Bucket, ...], constraints: tuple[Constraint, ...]) -> tuple[Bucket, ...]:
    """The buckets every constraint admits; ``ValueError`` if there are none."""
    kept = tuple(b for b in buckets if admitted(b, constraints))
    if not kept:
        raise ValueError(
            f"no shape satisfies {', '.join(map(str, constraints))}: nothing could be checked"
        )
    return kept
