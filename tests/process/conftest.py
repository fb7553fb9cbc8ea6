"""Every test in this directory checks the harness as a process (the command, the plugin in
another project, supervised children, two processes on a mesh): each is marked ``process``, which
tox runs on one Python only (see tox.ini)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.process)
