"""The harness turns on JAX's persistent compilation cache without overriding the user's."""

from __future__ import annotations

import jax
import pytest

from properties._src.calling import compilation_cache


@pytest.fixture
def restore_cache_settings():
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.mark.usefixtures("restore_cache_settings")
def test_a_configured_directory_is_kept_unless_replaced(tmp_path):
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "users"))
    assert compilation_cache.enable(str(tmp_path / "ours")) == str(tmp_path / "users")
    assert compilation_cache.enable(str(tmp_path / "ours"), replace=True) == str(tmp_path / "ours")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == (
        compilation_cache.MIN_COMPILE_SECONDS
    )


@pytest.mark.usefixtures("restore_cache_settings")
def test_an_unset_directory_becomes_the_default_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jax.config.update("jax_compilation_cache_dir", None)
    directory = compilation_cache.enable()
    assert directory == str(tmp_path / compilation_cache.DEFAULT_DIRECTORY)
