"""Judging a call: the properties, the comparison with the oracle, the diagnosis and who is at fault."""
