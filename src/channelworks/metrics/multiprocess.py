"""Several server processes, one ``/metrics``: prometheus_client's multi-process mode.

With ``PROMETHEUS_MULTIPROC_DIR`` set (to an empty directory, before the processes start,
the same for all of them) each process writes its metrics to files there: every
``FLUSH_INTERVAL`` seconds while it serves connections, and before each scrape it answers.
A scrape, answered by whichever process gets it, reads every process's files. Counters of a
process that ended stay counted; its gauges (open connections, the sync pool) are dropped
at the next scrape (a process found gone is marked dead).
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import weakref

from prometheus_client import CollectorRegistry, multiprocess

#: seconds between two writes of a process's metrics to the shared directory
#: (``CHANNELWORKS_METRICS_FLUSH_INTERVAL`` in the environment)
FLUSH_INTERVAL = float(os.environ.get("CHANNELWORKS_METRICS_FLUSH_INTERVAL", "5"))

_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)
_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


def directory() -> str | None:
    """The shared directory if multi-process mode is on, else ``None``."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def ensure_flusher() -> None:
    """Make sure the running loop writes this process's metrics every ``FLUSH_INTERVAL``."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = _flushers.get(loop)
    if task is None or task.done():
        _flushers[loop] = loop.create_task(_flush_forever(), name="channelworks.metrics flush")


async def _flush_forever() -> None:
    from channelworks.metrics.exporter import exporter

    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        exporter().sync()


def collected_registry(path: str) -> CollectorRegistry:
    """A registry reading every process's files in ``path`` (gone processes' gauges
    dropped first)."""
    forget_dead(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def forget_dead(path: str) -> None:
    """Remove the live gauges of processes that no longer exist (this host's pids)."""
    for name in glob.glob(os.path.join(path, "gauge_live*.db")):
        match = _LIVE_FILE.search(os.path.basename(name))
        if match is None:
            continue
        pid = int(match.group(1))
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


__all__ = ["FLUSH_INTERVAL", "collected_registry", "directory", "ensure_flusher", "forget_dead"]
