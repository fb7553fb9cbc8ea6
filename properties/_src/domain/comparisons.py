"""The names of the ways a result is compared with the oracle (``judging.comparison`` says
what each means): here, apart, so the pytest plugin can offer them without importing JAX."""

COMPARISONS = ("bits", "values")
COMPARE_HELP = (
    "bits: every bit must match (default); values: any NaN equals any NaN, +0.0 equals -0.0, "
    "everything else exact"
)
