"""The sharded update across two processes (``jax.distributed`` on localhost, 4 CPU devices
each): each process checks the shards it holds against the oracle (``distributed_update.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("distributed_update.py")
PROCESSES = 2
TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def test_a_sharded_update_across_two_processes_is_exact_on_every_shard():
    port = free_port()
    environment = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(WORKER.parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    environment.pop("XLA_FLAGS", None)  # the worker asks for its own 4 devices
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), str(PROCESSES), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for rank in range(PROCESSES)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=TIMEOUT_SECONDS))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for rank, (worker, (out, err)) in enumerate(zip(workers, outputs, strict=True)):
        assert worker.returncode == 0, f"process {rank} exited {worker.returncode}:\n{out}\n{err}"
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    held = set()
    for rank, summary in enumerate(summaries):
        assert summary["process"] == rank
        assert (summary["devices"], summary["local_devices"]) == (8, 4)
        assert summary["sharding_kept"]
        assert len(summary["shards"]) == 4 and all(s["exact"] for s in summary["shards"])
        held |= {(tuple(s["rows"]), tuple(s["heads"])) for s in summary["shards"]}
    # Between them the two processes hold all 8 blocks: each half of the rows, each heads quarter.
    assert held == {((r, r + 32), (h, h + 2)) for r in (0, 32) for h in (0, 2, 4, 6)}
