"""The live connections of this process and their counters, kept for operators.

Rules of this file:
- the consumer runtime calls in at a few points only: ``observe`` when a WebSocket
  connection starts, ``opened`` at the accept, ``failed`` when a handler raises, ``closing``
  when a close code is known and ``ended`` when the consumer ends. Per frame and per message
  it adds to a ``Connection``'s counters and to its ``Timing`` itself (``websocket.py``'s
  receive and send, ``base.py``'s message loop: a method call there would cost every
  message): a few integer additions on the event loop. Everything else (sums per route,
  Prometheus samples, snapshots) is computed when someone asks (``Observer.totals``,
  ``snapshot.py``);
- counters only grow: a connection's counters are added to its route's totals when it ends,
  so a sum over the totals and the live connections never goes back;
- with observation off (``configure(observe=False)`` or the ``CHANNELWORKS_OBSERVE``
  setting) ``observe`` returns ``None`` and the consumer pays one attribute test per message.
"""

from __future__ import annotations

import bisect
import itertools
import os
import secrets
import sys
import time
import weakref
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channelworks.exceptions import CloseConnection
from channelworks.ops import logs

if TYPE_CHECKING:
    from channelworks.consumers.base import AsyncConsumer

#: message types timed per consumer class at most; later ones are counted under ``OTHER``
MAX_TYPES = 100
OTHER = "other"
#: close codes outside the protocol's own (1000-1015) counted per route at most; later ones
#: under ``OTHER``: a client may close with any code of 3000-4999
MAX_CODES = 20

bucket_of = bisect.bisect_left  # the index of the first bound at or over a value

#: upper bounds (seconds) of the handler duration histogram's buckets
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Timing:
    """A histogram of one consumer class's handler durations for one message type."""

    __slots__ = ("counts", "failures", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)  # the last one: over every bound
        self.sum = 0.0
        #: exception class name -> how many handlers of this type raised it
        self.failures: dict[str, int] = {}


@dataclass
class RouteTotals:
    """What the connections of one route did, summed when each ended."""

    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    accepted: int = 0
    #: close code -> connections that ended with it; ``"refused"``: never accepted (a
    #: handshake refused with HTTP 403, or a client gone before the accept)
    closed: dict[str, int] = field(default_factory=dict)


class Connection:
    """One live WebSocket connection: who, where, since when, and what it did so far."""

    __slots__ = (
        "__weakref__",
        "accepted",
        "bytes_in",
        "bytes_out",
        "channel_name",
        "close_code",
        "consumer",
        "consumer_ref",
        "frames_in",
        "frames_out",
        "id",
        "observer",
        "route",
        "scope",
        "since",
        "started",
        "timings",
    )

    def __init__(self, observer: Observer, consumer: AsyncConsumer, connection_id: str) -> None:
        scope = consumer.scope
        self.observer = observer
        self.id = connection_id
        self.consumer = consumer_name(type(consumer))
        self.route = route_of(scope, self.consumer)
        self.consumer_ref = weakref.ref(consumer)
        self.channel_name = consumer.channel_name
        self.scope = scope
        self.since = time.time()
        self.started = time.monotonic()
        self.accepted = False
        self.close_code: int | None = None
        self.frames_in = self.bytes_in = self.frames_out = self.bytes_out = 0
        self.timings = observer.timings_of(self.consumer)

    # -- called by the consumer runtime ------------------------------------------------------

    def failed(self, kind: object, exc: BaseException) -> None:
        """A handler for a message of type ``kind`` raised ``exc`` (a ``CloseConnection``,
        a deliberate close, is not counted: its close code is)."""
        if isinstance(exc, CloseConnection):
            return
        timing = self.timing_of(kind)
        name = type(exc).__name__
        timing.failures[name] = timing.failures.get(name, 0) + 1

    def timing_of(self, kind: object) -> Timing:
        """The timing of messages of type ``kind`` for this consumer class. Types may come
        from clients (a consumer forwarding their JSON to ``group_send``, an unhandled type):
        past ``MAX_TYPES`` per class, and for a type that is not a string, they share
        ``OTHER``."""
        timings = self.timings
        if not isinstance(kind, str) or (kind not in timings and len(timings) >= MAX_TYPES):
            kind = OTHER
        timing = self.timings.get(kind)
        if timing is None:
            timing = self.timings[kind] = Timing()
        return timing

    def handled(self, kind: object, elapsed: float) -> None:
        """A handler of ``kind`` ran for ``elapsed`` seconds (the consumer's pump inlines this
        for the message it handles; a batch's other messages come here: batches.py)."""
        timing = self.timing_of(kind)
        timing.counts[bucket_of(DURATION_BUCKETS, elapsed)] += 1
        timing.sum += elapsed

    def opened(self) -> None:
        """The handshake was accepted."""
        if not self.accepted:
            self.accepted = True
            self.observer.totals_of(self.route).accepted += 1
            logs.opened(self)

    def closing(self, code: int) -> None:
        """A close code is known (sent by the consumer or received from the client); the
        first one is the connection's."""
        if self.close_code is None:
            self.close_code = code

    def ended(self) -> None:
        """The consumer ended: fold the counters into the route's totals and log the close."""
        self.observer.forget(self)
        totals = self.observer.totals_of(self.route)
        totals.frames_in += self.frames_in
        totals.bytes_in += self.bytes_in
        totals.frames_out += self.frames_out
        totals.bytes_out += self.bytes_out
        if not self.accepted:
            code = "refused"
        elif self.close_code is None:
            code = "none"
        else:
            code = _code_label(totals, self.close_code)
        totals.closed[code] = totals.closed.get(code, 0) + 1
        logs.closed(self)

    # -- read by operators ---------------------------------------------------------------------

    @property
    def client(self) -> str:
        """The remote address, ``host:port`` (the server's view: behind a proxy, see
        uvicorn's ``--proxy-headers``)."""
        client = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else ""

    @property
    def duration(self) -> float:
        return time.monotonic() - self.started

    def user(self) -> tuple[Hashable | None, str]:
        """The authenticated user's primary key and name, or ``(None, "")``.

        A lazy user not loaded yet counts as anonymous: loading it on the event loop would
        block on the database.
        """
        user = self.scope.get("user")
        if user is None:
            return None, ""
        try:
            if not user.is_authenticated:
                return None, ""
            return user.pk, str(user.get_username())
        except Exception:  # an unresolved lazy user refuses to load here
            return None, ""

    def groups(self) -> tuple[str, ...]:
        consumer = self.consumer_ref()
        return () if consumer is None else tuple(consumer.groups_joined)

    def topics(self) -> tuple[str, ...]:
        """The topics this connection joined (a ``TopicsConsumer``'s; none for others)."""
        consumer = self.consumer_ref()
        topics = sys.modules.get("channelworks.topics.consumer")
        if consumer is None or topics is None or not isinstance(consumer, topics.TopicsConsumer):
            return ()
        joined: dict[str, Any] = consumer.joined  # type: ignore[attr-defined]
        return tuple(joined)


class Observer:
    """The live connections of this process, the totals of those that ended, and the
    handler timings per consumer class."""

    def __init__(self) -> None:
        self.live: dict[str, Connection] = {}
        self.routes: dict[str, RouteTotals] = {}
        self.consumer_timings: dict[str, dict[object, Timing]] = {}
        #: a random prefix keeps connection ids unique across processes and hosts
        self.prefix = f"{secrets.token_hex(3)}{os.getpid():x}"
        #: whether topics' joins and leaves are counted (ops/topics.py)
        self.counting_topics = False
        self._ids = itertools.count(1)

    def observe(self, consumer: AsyncConsumer) -> Connection:
        """Start tracking ``consumer``'s connection; its id goes into the log context."""
        connection = Connection(self, consumer, f"{self.prefix}-{next(self._ids)}")
        self.live[connection.id] = connection
        logs.connection_id.set(connection.id)
        return connection

    def forget(self, connection: Connection) -> None:
        self.live.pop(connection.id, None)

    def totals_of(self, route: str) -> RouteTotals:
        totals = self.routes.get(route)
        if totals is None:
            totals = self.routes[route] = RouteTotals()
        return totals

    def timings_of(self, consumer: str) -> dict[object, Timing]:
        timings = self.consumer_timings.get(consumer)
        if timings is None:
            timings = self.consumer_timings[consumer] = {}
        return timings

    def connections(self) -> Iterator[Connection]:
        return iter(list(self.live.values()))

    def totals(self) -> dict[str, RouteTotals]:
        """Per route: the ended connections' totals plus the live ones' counters so far.

        Safe from another thread (the Django view's) while the loop adds routes: the routes
        are copied in one step (``list`` of a dict's items runs without a thread switch)."""
        result = {
            route: RouteTotals(
                t.frames_in, t.bytes_in, t.frames_out, t.bytes_out, t.accepted, dict(t.closed)
            )
            for route, t in list(self.routes.items())
        }
        for connection in self.connections():
            totals = result.setdefault(connection.route, RouteTotals())
            totals.frames_in += connection.frames_in
            totals.bytes_in += connection.bytes_in
            totals.frames_out += connection.frames_out
            totals.bytes_out += connection.bytes_out
        return result


def consumer_name(cls: type) -> str:
    """``module.QualName`` of a consumer class, made once per class (one string per
    connection otherwise)."""
    name = _names.get(cls)
    if name is None:
        name = _names[cls] = f"{cls.__module__}.{cls.__qualname__}"
    return name


#: consumer class -> its name (classes are few; weak keys let test classes go)
_names: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()


def _code_label(totals: RouteTotals, code: int) -> str:
    """``code`` as a label of ``totals.closed``: the protocol's own codes always, others while
    the route has fewer than ``MAX_CODES`` of them, then ``OTHER``."""
    label = str(code)
    if 1000 <= code <= 1015 or label in totals.closed:
        return label
    own = sum(1 for known in totals.closed if known.isdigit() and not 1000 <= int(known) <= 1015)
    return label if own < MAX_CODES else OTHER


def route_of(scope: Mapping[str, Any], consumer: str) -> str:
    """The low-cardinality name of a connection's route: the URL route's ``name`` if it has
    one, else the consumer class (never the path, which may hold ids)."""
    name = scope.get("route_name")
    return name if isinstance(name, str) and name else consumer


#: one observer per process, kept while observation is turned off and on again, so that
#: counters never go back
_shared = Observer()
#: prometheus_client's multi-process mode (channelworks.metrics.multiprocess), fixed at start
_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
#: what ``configure`` said (``None``: the setting decides)
_configured: bool | None = None
#: whether observation is on, decided on first use
_on: bool | None = None


def configure(observe: bool | None) -> None:
    """Turn observation on or off for connections starting from now; ``None`` goes back to
    the ``CHANNELWORKS_OBSERVE`` setting (default on)."""
    global _configured, _on
    _configured, _on = observe, None


def observer() -> Observer | None:
    """The process's observer, or ``None`` when observation is off."""
    global _on
    if _on is None:
        _on = _configured if _configured is not None else _setting()
    return _shared if _on else None


def _setting() -> bool:
    """``CHANNELWORKS_OBSERVE`` if Django settings are configured, else on."""
    import sys

    if "django" not in sys.modules:
        return True
    from django.conf import settings

    if not settings.configured:
        return True
    return bool(getattr(settings, "CHANNELWORKS_OBSERVE", True))


def observe(consumer: AsyncConsumer) -> Connection | None:
    """Track ``consumer``'s connection if it is a WebSocket and observation is on."""
    if consumer.scope.get("type") != "websocket" or not consumer.observed:
        return None
    found = observer()
    if found is None:
        return None
    if not found.counting_topics:  # topics import consumers: installed on first use
        from channelworks.ops import topics

        topics.install()
        found.counting_topics = True
    if _MULTIPROCESS:  # several processes, one /metrics: write ours every few seconds
        from channelworks.metrics.multiprocess import ensure_flusher

        ensure_flusher()
    if consumer.channel_layer is not None:  # answer operators through it (control.py)
        from channelworks.ops.control import ensure_service

        ensure_service(consumer.channel_layer)
    return found.observe(consumer)


__all__ = [
    "DURATION_BUCKETS",
    "Connection",
    "Observer",
    "RouteTotals",
    "Timing",
    "configure",
    "observe",
    "observer",
    "route_of",
    "utf8_size",
]


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; a lone surrogate (a test's bad frame) counts as three."""
    return len(text.encode("utf-8", "surrogatepass"))
