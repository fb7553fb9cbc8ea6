"""``validate``: check an update against the general-tier contract before running it."""

from __future__ import annotations

from oracle.contract import Tier, Update, require


def validate(new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, *, page_size: int):
    """Raise ``ContractViolation`` (a ``ValueError``) naming each broken rule and its column.

    Accepts everything the general tier allows, including garbage in padding columns. Reads
    the arrays on the host, so it costs a device-to-host transfer.
    """
    require(
        Update.of(
            new_kv_tokens, slice_indices, kv_cache_pages, total_update_slices, page_size=page_size
        ),
        Tier.GENERAL,
    )
