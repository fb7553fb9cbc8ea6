"""The contract's dimensions: the static shapes a run draws from, and the constraints that narrow them."""
