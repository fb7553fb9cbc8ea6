"""The update on a device mesh (8 virtual CPU devices, from conftest.py): right to the bit,
split as it came in, in place, with nothing moved between devices; and the harness on a mesh."""

from __future__ import annotations

import hlo
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

from kvcache import kv_cache_update, kv_cache_update_jax, sharded, update
from oracle.contract import Tier, Update
from oracle.reference import reference_update
from properties._src.calling.implementations import interpreting
from properties._src.calling.placement import MeshShape, arguments
from properties._src.cases.catalog import all_cases, bits
from properties._src.cases.property_case import PropertyCase
from properties._src.domain.buckets import BUCKETS
from properties._src.domain.constraints import fitting
from properties._src.drawing.strategies import updates
from properties._src.running.api import check

PAGE_SIZE, PAGES, HEADS, HEAD_DIM = 4, 8, 8, 8
ROWS = PAGE_SIZE * PAGES
AXIS_TYPES = {"auto": jax.sharding.AxisType.Auto, "explicit": jax.sharding.AxisType.Explicit}
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)


def make_mesh(axis_types: str, pages: int = 2, heads: int = 4) -> jax.sharding.Mesh:
    devices = jax.devices()[: pages * heads]
    kind = AXIS_TYPES[axis_types]
    return jax.make_mesh((pages, heads), ("pages", "heads"), (kind, kind), devices=devices)


def crossing_update(rows: int = ROWS) -> Update:
    """Slices on both shards of the rows, one across the boundary between them (rows 14..17
    of 32), one in the last page at an offset; garbage in the padding columns."""
    columns = [(14, 0, 4), (rows - 3, 4, 3), (5, 7, 2), (INT32_MAX, INT32_MIN, 7), (-5, 3, 4)]
    rng = np.random.default_rng(0)
    return Update(
        new_kv_tokens=rng.standard_normal((10, HEADS, HEAD_DIM)).astype(np.float32),
        slice_indices=np.array(columns, dtype=np.int32).T.copy(),
        kv_cache_pages=rng.standard_normal((rows, HEADS, HEAD_DIM)).astype(np.float32),
        total_update_slices=np.array([3], dtype=np.int32),
        page_size=PAGE_SIZE,
    )


IMPLEMENTATIONS = {
    "kv_cache_update_jax": kv_cache_update_jax,
    "update": update,
    "kv_cache_update (interpreted)": kv_cache_update,
}


@pytest.mark.parametrize("axis_types", AXIS_TYPES)
@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_sharded_update_matches_the_oracle_keeps_the_sharding_and_donates(name, axis_types):
    mesh, example = make_mesh(axis_types), crossing_update()
    placed = arguments(example, mesh)
    cache_sharding = placed[2].sharding
    with interpreting():
        result = IMPLEMENTATIONS[name](*placed, page_size=PAGE_SIZE)
    expected = reference_update(*example.arrays(), page_size=PAGE_SIZE)
    assert np.array_equal(bits(np.asarray(result)), bits(expected))
    assert result.sharding.is_equivalent_to(cache_sharding, 3), result.sharding
    assert placed[2].is_deleted()


@pytest.mark.parametrize("axis_types", AXIS_TYPES)
def test_compiled_sharded_update_moves_nothing_between_devices_and_copies_nothing(axis_types):
    """Each device's program sees only its block of the cache ([16, 2, 8] of [32, 8, 8]),
    updates it in place, and holds no collective at all."""
    placed = arguments(crossing_update(), make_mesh(axis_types))
    text = kv_cache_update_jax.lower(*placed, page_size=PAGE_SIZE).compile().as_text()
    block = (ROWS // 2, HEADS // 4, HEAD_DIM)
    assert hlo.collectives(text) == []
    assert hlo.shaped_ops(text, (ROWS, HEADS, HEAD_DIM)) == []
    assert {op for op, _ in hlo.shaped_ops(text, block)} >= {"parameter", "scatter"}
    assert hlo.copies(text, block) == []
    assert "input_output_alias={ {}: (2, {}, may-alias) }" in text


def test_the_hlo_reader_sees_a_gather_of_the_cache():
    """The check above can fail: a program that replicates the cache shows an all-gather."""
    mesh = make_mesh("auto")
    placed = arguments(crossing_update(), mesh)
    everywhere = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    gather = jax.jit(lambda cache: cache * 1, out_shardings=everywhere)
    text = gather.lower(placed[2]).compile().as_text()
    assert "all-gather" in hlo.collectives(text)


def test_explicit_sharding_inside_an_outer_jit_takes_the_sharded_path():
    mesh, example = make_mesh("explicit"), crossing_update()
    placed = arguments(example, mesh)
    program = jax.jit(lambda *a: kv_cache_update_jax(*a, page_size=PAGE_SIZE))
    result = program(*placed)
    expected = reference_update(*example.arrays(), page_size=PAGE_SIZE)
    assert np.array_equal(bits(np.asarray(result)), bits(expected))
    assert result.sharding.spec[:2] == ("pages", "heads")


def test_rows_that_do_not_split_in_whole_pages_are_refused():
    example = crossing_update(rows=36)  # 9 pages of 4 over 2 shards: 18 rows each
    placed = arguments(example, make_mesh("auto"))
    with pytest.raises(ValueError, match=r"36 rows must split over mesh axes 'pages'.*whole pages"):
        kv_cache_update_jax(*placed, page_size=PAGE_SIZE)


SHARDS = 2
EVEN_BUCKETS = fitting(BUCKETS, MeshShape(pages=SHARDS, heads=1).constraints())


@given(updates(Tier.GENERAL, EVEN_BUCKETS))
def test_localized_blocks_put_together_are_the_global_update(example):
    """Updating each shard's block with its localized columns, on the host, and stacking the
    blocks gives the oracle's global result: no write lost, moved or duplicated."""
    rows = example.kv_cache_pages.shape[0] // SHARDS
    blocks = []
    for shard in range(SHARDS):
        local = sharded.localize(
            jnp.asarray(example.slice_indices),
            jnp.asarray(example.total_update_slices),
            page_size=example.page_size,
            first_row=shard * rows,
            rows=rows,
        )
        block = example.kv_cache_pages[shard * rows : (shard + 1) * rows]
        blocks.append(
            reference_update(
                example.new_kv_tokens,
                np.asarray(local),
                block,
                example.total_update_slices,
                page_size=example.page_size,
            )
        )
    expected = reference_update(*example.arrays(), page_size=example.page_size)
    assert np.array_equal(bits(np.concatenate(blocks)), bits(expected))


def test_the_harness_on_a_mesh_accepts_the_project_update():
    """The property cases of both tiers (``sharding-preserved`` among them) and the serving
    loop, which feeds each step's sharded result back in, on 8 virtual devices, each shape
    compiled for the mesh: what it checks (sharding under this JAX) is JAX's, so both envs run
    it. The metamorphic and shape-change cases call the same update on the same placement;
    ``kvcache-check --mesh`` checks them too. ``kvcache:update`` (off a TPU, the fallback shard
    by shard); the kernel, interpreted shard by shard, costs about a second an example: the
    sharded tests above check it on a mesh."""
    on_mesh = [
        case
        for case in all_cases(on_mesh=True)
        if isinstance(case, PropertyCase) or case.name == "serving-loop"
    ]
    result = check(
        "kvcache:update", cases=on_mesh, mesh="pages=2,heads=4", profile="ci", max_examples=10
    )
    assert [r.property for r in result.results].count("sharding-preserved") == 2
    assert result.passed, [(r.property, r.tier, r.counterexample) for r in result.not_passed]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pages=2", "name both axes"),
        ("pages=2,heads=0", "positive integer"),
        ("pages=2,rows=4", "expected pages=P,heads=H"),
        ("pages=2,pages=2", "each axis once"),
    ],
)
def test_a_malformed_mesh_is_refused_saying_why(text, message):
    with pytest.raises(ValueError, match=message):
        MeshShape.parse(text)


def test_a_mesh_larger_than_the_devices_is_refused_saying_how_many():
    have = jax.device_count()
    with pytest.raises(ValueError, match=rf"needs {4 * have} devices; JAX has {have}"):
        MeshShape(pages=4, heads=have).build()
