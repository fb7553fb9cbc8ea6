"""The survey of the peers: the paged KV-cache updates that real engines ship, each downloaded
from its wheel, loaded with the smallest patch, and checked by ``kvcache-check``.

``python -m survey`` (or ``tox -e survey``) runs it. Not shipped in the wheel: it downloads other
projects' code at run time and is a tool for this repository only.
"""
