"""The properties find the original module's two defects by search alone, and shrink each
to a counterexample that shows it.

A zero-length column is not one of them: the original kernel starts and waits on a DMA for it,
and with race detection on JAX's TPU interpreter trips its own ``assert`` when that zero-byte
wait is the first on the semaphore (``shared_memory.py``, ``Semaphore.wait``); the harness
mends that check (``interpreter_repairs``), and the kernel gives the oracle's bits."""

from __future__ import annotations

import pytest
from hypothesis import settings

from oracle.contract import Tier, Update
from properties._src.calling.implementations import load
from properties._src.cases.property_case import PropertyCase
from properties._src.cases.run_config import RunConfig
from properties._src.domain.buckets import BUCKETS, Bucket
from properties._src.judging.checks import MATCHES_ORACLE
from properties._src.judging.steps import Step
from properties._src.running.runner import run

SEARCH = settings(
    max_examples=300, derandomize=True, database=None, deadline=None, report_multiple_bugs=False
)


def shrunk_counterexample(spec: str, tier: Tier, buckets: tuple[Bucket, ...] = BUCKETS) -> Update:
    """Run matches-oracle without the regression examples; return the last (shrunk) update."""
    seen: list[Step] = []
    test = PropertyCase(MATCHES_ORACLE, tier).build(
        load(spec),
        RunConfig(explicit_examples=False, observe=seen.append, settings=SEARCH, buckets=buckets),
    )
    with pytest.raises(Exception):  # noqa: B017 - a mismatch or a crash in the kernel both count
        test()
    return seen[-1].update


# The original fallback also raises with no columns, and under XLA:CPU in jaxlib 0.10 it quiets
# bfloat16 and float8_e5m2 NaN payloads in rows it does not write; shapes with those would shrink
# to those defects instead, so the clamp is looked for where a slice can be written without them.
CLAMP_SHAPES = tuple(
    b
    for b in BUCKETS
    if b.num_slices and b.num_tokens and b.dtype not in ("bfloat16", "float8_e5m2")
)


@pytest.mark.parametrize("tier", [Tier.GENERAL, Tier.SERVING], ids=["general", "serving"])
def test_seed_fallback_is_caught_writing_a_clamped_window(tier):
    update = shrunk_counterexample("properties.known_bad.lineage:seed_fallback", tier, CLAMP_SHAPES)
    rows = update.kv_cache_pages.shape[0]
    # The defect: a slice in the last page at an offset, whose page-sized window JAX clamps.
    assert any(
        length > 0 and dst % update.page_size > 0 and dst + update.page_size > rows
        for _, dst, _, length in update.columns()
    ), update


@pytest.mark.parametrize("tier", [Tier.GENERAL, Tier.SERVING], ids=["general", "serving"])
def test_seed_kernel_is_caught_copying_padding_in_its_last_grid_step(tier):
    """Up to 300 examples of an interpreted kernel (about 0.1 s a grid step) and their shrinking:
    half a minute or more, on one small shape so a shrink never recompiles."""
    # Interpreted kernels are slow to shrink across shapes: search one small bucket.
    outcome = run(
        load("properties.known_bad.lineage:seed_kernel"),
        PropertyCase(MATCHES_ORACLE, tier),
        RunConfig(settings=SEARCH, explicit_examples=False, buckets=BUCKETS[:1]),
    )
    assert outcome.status == "failed", outcome
    assert "padding-copied" in outcome.diagnosis.codes, outcome.diagnosis
    update = outcome.failure.update
    n, columns = update.num_real_slices, update.slice_indices.shape[1]
    step = max(s for s in range(1, 9) if columns % s == 0)
    last_launched = -(-n // step) * step
    # The defect: every column of a launched grid step is copied, padding included.
    assert any(update.slice_indices[2, c] > 0 for c in range(n, last_launched)), update
