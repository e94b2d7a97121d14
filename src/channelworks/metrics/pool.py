"""How busy the sync pool (the threads running sync handlers) is, read when asked.

Two pools have existed: the ``ThreadPoolExecutor`` of ``handlers.sync_executor`` and the
shared-queue pool of ``consumers/sync_pool.py``; the one this process loaded is read.
"""

from __future__ import annotations

import sys
from typing import Any


def sync_pool() -> tuple[int, int, int]:
    """(calls queued, threads running a call, threads started) of the sync pool; zeros
    before it is first used."""
    module = sys.modules.get("channelworks.consumers.sync_pool")
    pool: Any = getattr(module, "_pool", None)
    if pool is not None:
        return len(pool.queue), int(pool.running), int(pool.threads)
    handlers = sys.modules.get("channelworks.consumers.handlers")
    executor: Any = getattr(handlers, "_executor", None)
    if executor is None:
        return 0, 0, 0
    threads = len(executor._threads)
    idle = executor._idle_semaphore._value  # threads waiting for work
    return executor._work_queue.qsize(), max(threads - idle, 0), threads


__all__ = ["sync_pool"]
