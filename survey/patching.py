"""Patching and loading a peer's file: named text substitutions applied to the downloaded
text at run time, then the text imported as a module. The peer's code is never committed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from survey.peers import Patch


class PatchError(Exception):
    """A patch does not match the text it is meant for (the file changed upstream)."""


def apply(text: str, patches: Iterable[Patch], *, where: str = "the file") -> str:
    """``text`` with every patch applied in order; each must match exactly ``count`` times."""
    for patch in patches:
        found = text.count(patch.old)
        if found != patch.count:
            raise PatchError(
                f"patch {patch.name!r}: expected {patch.count} occurrence(s) of "
                f"{patch.old!r} in {where}, found {found}"
            )
        text = text.replace(patch.old, patch.new)
    return text


def load_module(name: str, text: str, directory: Path) -> ModuleType:
    """``text`` written to ``directory/name.py`` (so tracebacks show its lines) and imported
    as module ``name``, registered in ``sys.modules``."""
    if name in sys.modules:
        return sys.modules[name]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
