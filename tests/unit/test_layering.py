"""The harness's rooms are layered: a module in ``properties/_src/<role>/`` imports only from its
own role and the roles below it, so each role can be read (and changed) knowing only those.
Read from the source with ``ast``, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).parents[2] / "properties" / "_src"  # read, not imported
ORDER = (
    "domain",
    "calling",
    "drawing",
    "judging",
    "cases",
    "reporting",
    "running",
    "supervising",
)
PACKAGE = "properties._src."


def imported_roles(path: Path) -> set[str]:
    """The roles of ``properties._src`` that ``path`` imports from."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import; the project imports absolutely"
            names.append(node.module or "")
    return {name[len(PACKAGE) :].split(".")[0] for name in names if name.startswith(PACKAGE)}


def test_every_role_is_in_the_order():
    roles = {p.name for p in SOURCE.iterdir() if (p / "__init__.py").exists()}
    assert roles == set(ORDER)


@pytest.mark.parametrize("role", ORDER)
def test_a_role_imports_only_itself_and_the_roles_below(role):
    below = set(ORDER[: ORDER.index(role) + 1])
    upward = {
        str(path.relative_to(SOURCE)): sorted(imported_roles(path) - below)
        for path in sorted((SOURCE / role).glob("*.py"))
    }
    assert not {path: roles for path, roles in upward.items() if roles}
