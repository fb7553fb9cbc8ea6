"""One process of the two-process mesh test (``test_distributed.py`` starts two of these).

    python tests/process/distributed_update.py PROCESS_ID NUM_PROCESSES PORT   # CPU, on localhost
    python tests/process/distributed_update.py                                 # each host of a TPU slice

With arguments, each process joins the group through ``jax.distributed.initialize`` on
localhost with 4 CPU devices; without, JAX finds the group itself (a multi-host TPU slice).
The mesh has one "pages" shard per process and one "heads" shard per local device: with two
CPU processes, process 0 holds the first half of the cache's rows, process 1 the second. Every
process builds the same global update from the same seed, places it with
``jax.make_array_from_callback``, runs ``kvcache.update`` (on a TPU, the kernel on each chip's
block) and checks every shard it holds against the oracle, bit for bit. The last line printed
is a JSON summary; the exit status is 0 only if every check passed.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

LOCAL_DEVICES = 4
PAGE_SIZE, PAGES, HEADS, HEAD_DIM = 4, 16, 8, 128


def global_update():
    """The same update in every process: requests in pages on both halves of the cache, and
    one general-tier slice across the halves' boundary (rows 30..33; the boundary is row 32)."""
    from kvcache import slot_mapping

    rng = np.random.default_rng(13)
    tables = [[2, 9], [6, 10], [15], [0, 12, 5]]
    computed, scheduled = [3, 1, 2, 0], [4, 7, 1, 10]
    indices, count = slot_mapping(tables, computed, scheduled, page_size=PAGE_SIZE)
    indices[:, 1] = (30, 0, 4)  # in place of request 0's second slice
    new = rng.standard_normal((sum(scheduled), HEADS, HEAD_DIM)).astype(np.float32)
    cache = rng.standard_normal((PAGES * PAGE_SIZE, HEADS, HEAD_DIM)).astype(np.float32)
    return new, np.asarray(indices), cache, np.asarray(count)


def main(arguments: list[str]) -> int:
    if arguments:
        process_id, num_processes, port = map(int, arguments)
        jax.config.update("jax_num_cpu_devices", LOCAL_DEVICES)
        jax.distributed.initialize(
            coordinator_address=f"localhost:{port}",
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=60,
        )
    else:
        jax.distributed.initialize()
    try:
        return check()
    finally:
        jax.distributed.shutdown()


def check() -> int:
    import kvcache
    from oracle.reference import reference_update

    mesh = jax.make_mesh(
        (jax.process_count(), jax.local_device_count()),
        ("pages", "heads"),
        axis_types=(AxisType.Auto,) * 2,
    )
    specs = (
        PartitionSpec(None, "heads"),
        PartitionSpec(),
        PartitionSpec("pages", "heads"),
        PartitionSpec(),
    )
    host = global_update()
    placed = [
        jax.make_array_from_callback(a.shape, NamedSharding(mesh, s), lambda i, a=a: a[i])
        for a, s in zip(host, specs, strict=True)
    ]
    result = kvcache.update(*placed, page_size=PAGE_SIZE)
    expected = reference_update(*host, page_size=PAGE_SIZE)
    shards = [
        {
            "device": shard.device.id,
            "rows": [shard.index[0].start, shard.index[0].stop],
            "heads": [shard.index[1].start, shard.index[1].stop],
            "exact": bool(
                np.array_equal(
                    np.asarray(shard.data).view(np.uint32), expected[shard.index].view(np.uint32)
                )
            ),
        }
        for shard in result.addressable_shards
    ]
    summary = {
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "sharding_kept": result.sharding.is_equivalent_to(placed[2].sharding, 3),
        "shards": shards,
    }
    print(json.dumps(summary), flush=True)
    passed = summary["sharding_kept"] and all(s["exact"] for s in shards)
    return 0 if passed and shards else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
