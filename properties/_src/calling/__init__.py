"""Calling an implementation: loading it, the calling modes, the TPU interpreter and its repairs, device placement."""
