"""How busy the sync pool (consumers/sync_pool.py: the threads running sync handlers) is,
read when asked."""

from __future__ import annotations

from channelworks.consumers import sync_pool as pool_module


def sync_pool() -> tuple[int, int, int]:
    """(calls queued, workers running or taking a call, threads started); zeros before the
    pool is first used."""
    pool = pool_module._pool
    if pool is None:
        return 0, 0, 0
    return len(pool.queue), pool.running, pool.threads


__all__ = ["sync_pool"]
