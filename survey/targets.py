"""The peers as ``kvcache-check`` implementations: ``--impl survey.targets:<peer key>``.

Each attribute is made on first access (PEP 562): the wheel from the cache (downloaded if
absent), the file patched and imported, the function adapted to the harness's protocol.
"""

from __future__ import annotations

from collections.abc import Callable

from survey import adapters, fetching, patching, peers


def load(peer: peers.Peer) -> Callable:
    """The peer's own function, from its patched file."""
    cache = fetching.cache_dir()
    text = fetching.read_member(fetching.wheel(peer.package, peer.version, cache), peer.file)
    patched = patching.apply(text, peer.patches, where=f"{peer.package} {peer.file}")
    module = patching.load_module(peer.module_name, patched, cache / "patched")
    return getattr(module, peer.function)


def __getattr__(key: str) -> Callable:
    try:
        peer = peers.by_key(key)
    except KeyError as error:
        raise AttributeError(str(error)) from None
    update = adapters.adapt(peer, load(peer))
    globals()[key] = update
    return update
