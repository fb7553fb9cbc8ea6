"""Running a case under Hypothesis: the profiles, the runner, and the Python API built on it."""
