"""What a shape constraint can name and how ``--constraint`` is described: here, apart from
``constraints`` (which imports NumPy and the pool), so the pytest plugin can offer the option
without importing JAX, in the command's words."""

# Each dimension a constraint can name, as the ``Bucket`` field that holds it.
DIMENSIONS = {
    "heads": "heads",
    "head_dim": "head_dim",
    "page_size": "page_size",
    "columns": "num_slices",
    "tokens": "num_tokens",
    "pages": "num_pages",
}

# Each dtype a constraint can fix (``dtype=bfloat16``, ``table_dtype=int32``), as the ``Bucket``
# field that holds it: for an implementation that takes a cache, a slice table or a count of
# some dtypes only. Several constraints on one field admit any of their dtypes.
DTYPE_FIELDS = {"dtype": "dtype", "table_dtype": "table_dtype", "count_dtype": "count_dtype"}

CONSTRAINT_METAVAR = "DIM%K|FIELD=DTYPE"
CONSTRAINT_HELP = (
    f"draw only shapes whose DIM ({', '.join(DIMENSIONS)}) is a multiple of K, or whose FIELD "
    "(dtype: the cache's, table_dtype, count_dtype) is DTYPE (repeatable: several of one FIELD "
    "admit any of their dtypes)"
)
