"""Fetching a peer's file: its wheel from the package index with pip, cached between runs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

# Git-ignored; the survey's downloads live here between runs (vLLM's wheel is ~440 MB).
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".survey-cache"


class FetchError(Exception):
    """A wheel could not be downloaded, or does not hold the file."""


def cache_dir() -> Path:
    """``KVCACHE_SURVEY_CACHE`` if set, else ``.survey-cache`` at the repository root."""
    return Path(os.environ.get("KVCACHE_SURVEY_CACHE", DEFAULT_CACHE))


def wheel_name_prefix(package: str, version: str) -> str:
    """How a wheel's file name starts (PEP 427: ``-`` and ``.`` in the name become ``_``)."""
    return f"{package.replace('-', '_').replace('.', '_')}-{version}-"


def cached_wheel(package: str, version: str, cache: Path) -> Path | None:
    """The wheel of ``package==version`` already in ``cache``, if any."""
    prefix = wheel_name_prefix(package, version).lower()
    found = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(prefix))
    return found[0] if found else None


def wheel(package: str, version: str, cache: Path | None = None) -> Path:
    """The wheel of ``package==version``, downloaded with pip into ``cache`` unless there."""
    cache = cache or cache_dir()
    if found := cached_wheel(package, version, cache):
        return found
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:"]
    command += ["--only-binary", ":all:", "-d", str(cache), f"{package}=={version}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not (found := cached_wheel(package, version, cache)):
        raise FetchError(
            f"pip could not download a wheel of {package}=={version}:\n{done.stderr.strip()}"
        )
    return found


def read_member(wheel_path: Path, member: str) -> str:
    """The text of ``member`` in the wheel, or ``FetchError`` if it has none."""
    with zipfile.ZipFile(wheel_path) as archive:
        try:
            return archive.read(member).decode("utf-8")
        except KeyError:
            raise FetchError(f"{wheel_path.name} has no {member}") from None
