"""The survey's own logic, with no network: patches, loading, adapters, the command line,
the cache lookup and the table."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kvcache import kv_cache_update_jax
from oracle.contract import Update
from properties import CaseResult
from properties._src.calling.implementations import CALL_MODES, Implementation
from properties._src.judging import comparison
from properties._src.judging.checks import MATCHES_ORACLE
from properties._src.judging.judge import judged_call
from properties._src.judging.steps import Step
from survey import adapters, fetching, patching, peers, running, table
from survey.peers import Patch, Peer

TEXT = "from far.away import helper\nx = helper(1)\nspace = pltpu.MemorySpace.ANY\n"
INLINE = Patch(
    "helper inline", "from far.away import helper", "def helper(v):\n    return v + 1", "test"
)


def test_patches_apply_in_order_and_only_there():
    rename = Patch("rename", "pltpu.MemorySpace.ANY", "pl.ANY", "test")
    patched = patching.apply(TEXT, (INLINE, rename))
    assert patched == "def helper(v):\n    return v + 1\nx = helper(1)\nspace = pl.ANY\n"


@pytest.mark.parametrize("count", [1, 3])
def test_a_patch_that_matches_a_different_number_of_times_is_refused(count):
    patch = Patch("twice", "helper", "h", "test", count=count)
    with pytest.raises(patching.PatchError, match=r"'twice'.*expected .* found 2"):
        patching.apply(TEXT, (patch,), where="far.py")


def test_a_patched_text_loads_as_a_module_from_a_file(tmp_path):
    name = "survey_test_loaded_module"
    try:
        module = patching.load_module(
            name, patching.apply(TEXT.split("space")[0], (INLINE,)), tmp_path
        )
        assert module.x == 2
        assert Path(module.__file__) == tmp_path / f"{name}.py"
        assert patching.load_module(name, "raise AssertionError", tmp_path) is module
    finally:
        sys.modules.pop(name, None)


def test_a_module_that_fails_to_load_is_not_left_registered(tmp_path):
    with pytest.raises(ZeroDivisionError):
        patching.load_module("survey_test_broken_module", "1 / 0", tmp_path)
    assert "survey_test_broken_module" not in sys.modules


def test_the_peers_table_is_consistent():
    assert len({p.key for p in peers.PEERS}) == len(peers.PEERS)
    assert all(p.key.isidentifier() for p in peers.PEERS)  # an attribute of survey.targets
    for peer in peers.PEERS:
        assert peer.file.endswith(".py") and peer.version[0].isdigit()
        assert all(p.old and p.why for p in peer.patches)
    with pytest.raises(KeyError, match="known: tpu_inference"):
        peers.by_key("nope")


def recording(calls):
    def peer_function(*arguments, **keywords):
        calls.append((arguments, keywords, jax.sharding.get_abstract_mesh().axis_names))
        return arguments[2]

    return peer_function


def protocol_arguments(count_shape):
    return (
        jnp.zeros((4, 2, 8)),
        jnp.zeros((3, 4), jnp.int32),
        jnp.ones((8, 2, 8)),
        jnp.ones(count_shape, jnp.int32),
    )


def test_the_adapter_maps_the_protocol_onto_the_peers_call():
    calls = []
    peer = Peer(
        "p", "pkg", "1", "f.py", "f", keywords={"num_slices_per_block": 4}, count_as_one=True
    )
    update = adapters.adapt(peer, recording(calls))
    new, slices, cache, count = protocol_arguments(())
    assert update(new, slices, cache, count, page_size=2) is cache
    (arguments, keywords, axes) = calls[0]
    assert arguments[:3] == (new, slices, cache) and arguments[3].shape == (1,)
    assert keywords == {"page_size": 2, "num_slices_per_block": 4}
    assert axes == ()  # no ambient mesh unless the peer reads one
    assert update.__name__ == "p"


def test_the_adapter_keeps_the_count_and_sets_an_ambient_mesh_where_asked():
    """The mesh is the process's from then on (so the call also works under ``jax.jit``)."""
    calls = []
    try:
        update = adapters.adapt(
            Peer("p", "pkg", "1", "f.py", "f", mesh_axis="tensor"), recording(calls)
        )
        arguments = protocol_arguments((1,))
        update(*arguments, page_size=4)
    finally:
        jax.set_mesh(None)  # the test process's other tests run without one
    (passed, keywords, axes) = calls[0]
    assert passed[3] is arguments[3] and keywords == {"page_size": 4}
    assert axes == ("tensor",)


def test_the_command_checks_one_peer_with_its_constraints(tmp_path):
    peer = peers.by_key("sglang_jax_kv_cache_update")
    line = running.command(peer, tmp_path / "r.json", "ci", ["--compare", "values"])
    assert line[1:3] == ["-m", "properties.cli"]
    assert line[line.index("--impl") + 1] == "survey.targets:sglang_jax_kv_cache_update"
    assert [line[i + 1] for i, a in enumerate(line) if a == "--constraint"] == list(
        peer.constraints
    )
    assert line[-2:] == ["--compare", "values"]


def test_a_cached_wheel_is_found_without_pip(tmp_path):
    (tmp_path / "sglang_jax-0.0.1.post1-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "sglang_jax-0.0.10-py3-none-any.whl").write_bytes(b"")
    found = fetching.wheel("sglang-jax", "0.0.1.post1", tmp_path)
    assert found.name == "sglang_jax-0.0.1.post1-py3-none-any.whl"
    assert fetching.cached_wheel("sglang-jax", "0.0.1", tmp_path) is None


def test_a_wheel_without_the_file_says_so(tmp_path):
    import zipfile

    path = tmp_path / "w-1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w/other.py", "")
    with pytest.raises(fetching.FetchError, match="has no w/missing.py"):
        fetching.read_member(path, "w/missing.py")


def test_the_table_shows_each_tier_its_verdicts_and_diagnoses():
    results = (
        CaseResult("matches-oracle", "general", "passed", 3, 1.2, None),
        CaseResult(
            "matches-oracle", "serving", "failed", 3, 2.0, "why", ("padding-copied", "values")
        ),
    )
    peer = peers.by_key("sglang_jax_kv_cache_update")
    text = table.render([running.PeerRun(peer, results, 1, "", 5.0)])
    general, serving = text.splitlines()[1:3]
    assert "general" in general and "matches-oracle: passed" in general
    assert "matches-oracle: failed [padding-copied, values]" in serving
    assert "exit 1" in text and "heads%2" in text
    missing = table.render([running.PeerRun(peer, None, 2, "x\nkvcache-check: error: bad", 1.0)])
    assert "not checked: kvcache-check: error: bad" in missing


def test_a_jitted_adapter_traces_the_peer_once_per_shape_under_its_mesh():
    calls = []
    peer = Peer("p", "pkg", "1", "f.py", "f", mesh_axis="tensor", jit=True)
    update = adapters.adapt(peer, recording(calls))
    for _ in range(2):
        result = update(*protocol_arguments((1,)), page_size=4)
    assert len(calls) == 1 and calls[0][2] == ("tensor",)
    assert (result == 1).all()


def test_a_wheel_pip_cannot_get_is_a_fetch_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: pip looks only in an empty folder
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(fetching.FetchError, match=r"sglang-jax==0\.0\.1\.post1"):
        fetching.wheel("sglang-jax", "0.0.1.post1", tmp_path / "cache")


def exact_stand_in(new_kv_tokens, slice_indices, kv_cache_pages, count, *, page_size, **block):
    """A peer that writes every bit: the project's fallback (its block size ignored)."""
    del block
    return kv_cache_update_jax(
        new_kv_tokens, slice_indices, kv_cache_pages, count, page_size=page_size
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e5m2"])
def test_every_adapter_keeps_nan_payloads_eagerly_and_under_jit_donated(dtype, monkeypatch):
    """An adapter must not put a finding on a peer that is its own: around a peer that keeps
    every bit, each peer's adapter gives the oracle's bits in both calling modes, judged with
    no NaN excused for the platform. (Views taken inside ``jax.jit`` are the risk: on XLA:CPU
    in jaxlib 0.10 a bfloat16 pad quiets NaN payloads, eagerly, and under ``jit`` when a
    bitcast-convert follows it.)"""
    monkeypatch.setattr(comparison, "quiets_nan_payloads", lambda dtype: False)
    unsigned = np.dtype(f"u{np.dtype(jnp.dtype(dtype)).itemsize}")
    nans = np.arange(2 ** (8 * unsigned.itemsize), dtype=unsigned).view(dtype)
    nans = nans[np.isnan(nans.astype(np.float32))]  # every NaN of the type, both signs
    rows = np.resize(nans, (16, 2, 8))
    update = Update(
        new_kv_tokens=rows[::-1][:8].copy(),
        slice_indices=np.array([[1] + [0] * 7, [0] * 8, [3] + [0] * 7], np.int32),
        kv_cache_pages=rows,
        total_update_slices=np.array([1], np.int32),
        page_size=4,
    )
    try:
        for peer in peers.PEERS:
            adapted = Implementation(peer.key, adapters.adapt(peer, exact_stand_in))
            for mode in CALL_MODES:
                _, failure = judged_call(adapted, MATCHES_ORACLE, Step(update, mode))
                assert failure is None, peer.key
    finally:
        jax.set_mesh(None)  # sglang-jax's adapter set one for the process
