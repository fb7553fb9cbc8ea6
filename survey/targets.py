"""The peers as ``kvcache-check`` implementations: ``--impl survey.targets:<peer key>``.

Each attribute is made on first access (PEP 562): the wheel from the cache (downloaded if
absent), the file patched and imported, the function adapted to the harness's protocol.
"""

from __future__ import annotations

from collections.abc import Callable

from survey import adapters, fetching, patching, peers


def patched_text(peer: peers.Peer) -> str:
    """The peer's file from its wheel (downloaded into the cache if absent), patched."""
    text = fetching.read_member(fetching.wheel(peer.package, peer.version), peer.file)
    return patching.apply(text, peer.patches, where=f"{peer.package} {peer.version} {peer.file}")


def load(peer: peers.Peer) -> Callable:
    """The peer's own function, from its patched file."""
    directory = fetching.cache_dir() / "patched"
    module = patching.load_module(peer.module_name, patched_text(peer), directory)
    return getattr(module, peer.function)


def __getattr__(key: str) -> Callable:
    try:
        peer = peers.by_key(key)
    except KeyError as error:
        raise AttributeError(str(error)) from None
    update = adapters.adapt(peer, load(peer))
    globals()[key] = update
    return update
