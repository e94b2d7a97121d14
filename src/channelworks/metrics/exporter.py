"""The Prometheus metrics of a channelworks process, brought up to date when asked.

Rules of this file:
- nothing here runs per message: the consumer runtime only adds to plain counters
  (channelworks.ops); ``Exporter.sync()`` turns those into ``prometheus_client`` metrics,
  adding to each counter what it gained since the last sync. It runs before every scrape
  and, with several processes (``PROMETHEUS_MULTIPROC_DIR``), every ``FLUSH_INTERVAL``
  seconds in each process (multiprocess.py), so a scrape answered by one process sees them
  all;
- names follow Prometheus' conventions: ``channelworks_`` prefix, base units, ``_total`` on
  counters, labels of low cardinality only (a route, a consumer class, a close code, a layer
  alias; never a user, a path or a group);
- ``prometheus_client`` picks its multi-process storage when it is imported: set
  ``PROMETHEUS_MULTIPROC_DIR`` before the process starts.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Hashable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics import MetricWrapperBase

from channelworks.layers.base import FANOUT_BUCKETS, FanOut
from channelworks.layers.registry import channel_layers
from channelworks.limits.stats import stats as limit_stats
from channelworks.metrics.multiprocess import directory
from channelworks.metrics.pool import sync_pool
from channelworks.ops.connections import DURATION_BUCKETS, Observer, Timing, observer

PROTOCOL = "websocket"  # the only protocol observed so far (ops/connections.py)


class Exporter:
    """The process's metrics in ``registry`` and what each counter held at the last sync."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._seen: dict[Hashable, float] = {}
        self._lock = threading.Lock()  # a scrape in a thread and the flusher on the loop
        r = self.registry
        if directory() is None:  # process_* metrics (CPU, memory, fds) of this process
            ProcessCollector(registry=r)
        self.open = Gauge(
            "channelworks_connections_open",
            "WebSocket connections accepted and not yet closed.",
            ["route", "protocol"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.accepted = Counter(
            "channelworks_connections_accepted",
            "Connections accepted (the handshake completed).",
            ["route", "protocol"],
            registry=r,
        )
        self.closed = Counter(
            "channelworks_connections_closed",
            "Connections ended, by close code (refused: the handshake was never accepted).",
            ["route", "protocol", "code"],
            registry=r,
        )
        self.frames = Counter(
            "channelworks_frames",
            "WebSocket frames, by direction (in: from clients, out: to clients).",
            ["route", "direction"],
            registry=r,
        )
        self.bytes = Counter(
            "channelworks_frame_bytes",
            "Bytes of WebSocket frame payloads (text as UTF-8), by direction.",
            ["route", "direction"],
            registry=r,
        )
        self.durations = Histogram(
            "channelworks_handler_duration_seconds",
            "Time handlers took, by consumer class and message type.",
            ["consumer", "type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.exceptions = Counter(
            "channelworks_handler_exceptions",
            "Handlers that raised (a CloseConnection, a deliberate close, is not counted).",
            ["consumer", "type", "exception"],
            registry=r,
        )
        self.pool_queued = Gauge(
            "channelworks_sync_pool_queued",
            "Sync handler calls waiting for a worker thread.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_busy = Gauge(
            "channelworks_sync_pool_busy_threads",
            "Worker threads of the sync pool running a call.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_threads = Gauge(
            "channelworks_sync_pool_threads",
            "Worker threads the sync pool has started.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.limits = Counter(
            "channelworks_limit_events",
            "What the per-connection limits did (channelworks.limits.stats), by event.",
            ["event"],
            registry=r,
        )
        self.topic_joins = Counter(
            "channelworks_topic_joins",
            "Topic joins by pattern, outcome (joined, refused) and reason.",
            ["pattern", "outcome", "reason"],
            registry=r,
        )
        self.topic_leaves = Counter(
            "channelworks_topic_leaves",
            "Sockets that left a topic, by pattern and reason.",
            ["pattern", "reason"],
            registry=r,
        )
        self.topic_crashes = Counter(
            "channelworks_topic_crashes",
            "Topic handlers that raised, by pattern.",
            ["pattern"],
            registry=r,
        )
        self.layer = Counter(
            "channelworks_layer_events",
            "Every counter of the channel layers (layer.stats), by layer alias and event.",
            ["alias", "event"],
            registry=r,
        )
        self.fanout = Histogram(
            "channelworks_group_fanout",
            "Channels one group message was delivered to in this process, by layer alias.",
            ["alias"],
            buckets=FANOUT_BUCKETS,
            registry=r,
        )

    def sync(self, found: Observer | None = None) -> None:
        """Bring every metric up to date with this process's counters."""
        found = found if found is not None else observer()
        with self._lock:
            if found is not None:
                self._sync_connections(found)
            queued, busy, threads = sync_pool()
            self.pool_queued.set(queued)
            self.pool_busy.set(busy)
            self.pool_threads.set(threads)
            if "channelworks.ops.topics" in sys.modules:  # installed with the first socket
                self._sync_topics()
            for event, value in limit_stats.as_dict().items():
                self._add(self.limits, (event,), value)
            for alias, layer in list(channel_layers.backends.items()):
                counters = getattr(layer, "stats", None)
                if not dataclasses.is_dataclass(counters) or isinstance(counters, type):
                    continue
                # Keyed by the layer too: a layer made again under an alias counts from 0.
                for event, value in dataclasses.asdict(counters).items():
                    if isinstance(value, int):
                        self._add(self.layer, (alias, event), value, key=id(layer))
                fanout = getattr(layer, "fanout", None)
                if isinstance(fanout, FanOut):
                    self._add_histogram(self.fanout, ("fanout", id(layer)), (alias,), fanout)

    def _sync_connections(self, found: Observer) -> None:
        open_now: dict[str, int] = {}
        for connection in found.connections():
            if connection.accepted:
                open_now[connection.route] = open_now.get(connection.route, 0) + 1
        for route, totals in found.totals().items():
            self.open.labels(route, PROTOCOL).set(open_now.get(route, 0))
            self._add(self.accepted, (route, PROTOCOL), totals.accepted)
            for code, count in totals.closed.items():
                self._add(self.closed, (route, PROTOCOL, code), count)
            self._add(self.frames, (route, "in"), totals.frames_in)
            self._add(self.frames, (route, "out"), totals.frames_out)
            self._add(self.bytes, (route, "in"), totals.bytes_in)
            self._add(self.bytes, (route, "out"), totals.bytes_out)
        for consumer, timings in list(found.consumer_timings.items()):
            for kind, timing in list(timings.items()):
                labels = (consumer, str(kind))
                self._add_histogram(self.durations, ("duration", labels), labels, timing)
                for exception, count in list(timing.failures.items()):
                    self._add(self.exceptions, (*labels, exception), count)

    def _sync_topics(self) -> None:
        from channelworks.ops.topics import counts

        for labels, value in list(counts.joins.items()):
            self._add(self.topic_joins, labels, value)
        for leave, value in list(counts.leaves.items()):
            self._add(self.topic_leaves, leave, value)
        for pattern, value in list(counts.crashes.items()):
            self._add(self.topic_crashes, (pattern,), value)

    def _add_histogram(
        self, metric: Histogram, key: Hashable, labels: tuple[str, ...], found: Timing | FanOut
    ) -> None:
        """Add to ``metric``'s child what each bucket of ``found`` (non-cumulative counts and
        a sum) gained since the last sync."""
        histogram: Any = metric.labels(*labels)
        # No API adds whole buckets: add to the child's values as observe() does.
        for index, count in enumerate(list(found.counts)):
            gained = self._gain((key, index), count)
            if gained > 0:
                histogram._buckets[index].inc(gained)
        gained_sum = self._gain((key, "sum"), found.sum)
        if gained_sum > 0:
            histogram._sum.inc(gained_sum)

    def _gain(self, key: Hashable, value: float) -> float:
        """What ``value`` gained since the last sync under ``key``."""
        gained = value - self._seen.get(key, 0)
        self._seen[key] = value
        return gained

    def _add(
        self,
        counter: MetricWrapperBase,
        labels: tuple[str, ...],
        value: float,
        *,
        key: Hashable = None,
    ) -> None:
        """Add to ``counter``'s child what ``value`` gained since the last sync (``key``
        tells apart sources under the same labels)."""
        gained = self._gain((counter._name, labels, key), value)
        child: Any = counter.labels(*labels)
        if gained > 0:
            child.inc(gained)


_exporter: Exporter | None = None


def exporter() -> Exporter:
    """The process's exporter, made on first use."""
    global _exporter
    if _exporter is None:
        _exporter = Exporter()
    return _exporter


__all__ = ["Exporter", "exporter"]
