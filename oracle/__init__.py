"""A NumPy reference for the paged KV-cache update, and its contract.

The operation
-------------
``kv_cache_pages[pages * page_size, heads, head_dim]`` is a flat paged cache.
``slice_indices[3, num_slices]`` holds, per column, ``(cache start, new-token start, length)``;
``total_update_slices`` (shape ``[1]`` or ``[]``) says how many leading columns, ``n``, are real.
For each real column, in order, ``cache[dst:dst+len] = new_kv_tokens[src:src+len]``. Nothing
else changes; the copy is exact, bit for bit.

The contract
------------
Arguments (malformed input): tokens and cache are 3-D with equal heads, head_dim and dtype;
the cache holds a whole number of pages; ``page_size >= 1``; ``slice_indices`` is an integer
``[3, num_slices]`` array; the count is one integer with ``0 <= n <= num_slices``.

General tier, what every implementation must handle. For the first ``n`` columns only:
starts >= 0; ``0 <= len <= page_size``; source and destination inside their arrays;
destinations pairwise disjoint. Columns >= n may hold any values and must be ignored.
Anything these rules do not forbid is valid: a slice crossing a page boundary, repeated or
unordered sources, zero-length slices.

Serving tier, what serving runners produce (a subset): also at least one real column and one
new token (runners never call the update without requests), ``len >= 1``, each slice inside
one page, and sources packed in column order from 0 (each start is the sum of the lengths
before it).

``oracle.contract`` holds each rule as a named, separately checkable ``Rule``;
``oracle.reference`` holds the update.
"""

from oracle.contract import (
    RULES,
    ContractViolation,
    Rule,
    Tier,
    Update,
    Violation,
    require,
    violations,
)
from oracle.reference import reference_update, written_rows

__all__ = [
    "RULES",
    "ContractViolation",
    "Rule",
    "Tier",
    "Update",
    "Violation",
    "reference_update",
    "require",
    "violations",
    "written_rows",
]
