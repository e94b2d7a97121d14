"""Metrics hooks: what happens on topics, for counters (channelworks.metrics) and logs.

Subclass ``TopicsObserver``, override the methods you need and register an instance with
``observers.add(obj)``. Every method runs on the event loop, inline, after the fact: keep it
short and never block. ``pattern`` is the topic class's pattern (``"room:{slug}"``, a
low-cardinality label), ``topic`` the concrete name (``"room:lobby"``, not for labels). An
observer that raises is logged (aggregated) and does not disturb the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.topics")


class TopicsObserver:
    """The hooks, all no-ops by default."""

    def joined(self, pattern: str, topic: str, *, recovered: bool | None) -> None:
        """A join was accepted; ``recovered`` is ``None`` for a topic without history."""

    def refused(self, pattern: str | None, topic: str, reason: str) -> None:
        """A join was refused (``pattern`` is ``None`` for ``unknown_topic``)."""

    def left(self, pattern: str, topic: str, reason: str) -> None:
        """A socket left a topic: ``"leave"``, ``"disconnect"``, ``"rejoin"``, ``"closed"``
        (the server removed it) or ``"crashed"``."""

    def pushed(self, pattern: str, topic: str, event: str) -> None:
        """A client push reached the topic's ``handle_in``."""

    def replied(self, pattern: str, topic: str, event: str, status: str, seconds: float) -> None:
        """A reply was sent to a client push, ``seconds`` after the push was taken."""

    def delivered(self, pattern: str, topic: str, event: str) -> None:
        """A server push (broadcast or ``push``) was sent to one socket."""

    def broadcast(self, topic: str, event: str) -> None:
        """``broadcast``/``abroadcast`` sent an event to a topic (once per call)."""

    def crashed(self, pattern: str, topic: str, event: str, error: BaseException) -> None:
        """A topic's handler raised; the socket got an ``error`` event for the topic."""


class Observers:
    """The registered observers; ``observers`` below is the process-wide instance."""

    def __init__(self) -> None:
        self._items: tuple[TopicsObserver, ...] = ()
        self._log = AggregatedLog()

    def add(self, observer: TopicsObserver) -> None:
        if observer not in self._items:
            self._items = (*self._items, observer)

    def remove(self, observer: TopicsObserver) -> None:
        self._items = tuple(o for o in self._items if o is not observer)

    def __bool__(self) -> bool:
        return bool(self._items)

    def notify(self, hook: str, *args: Any, **kwargs: Any) -> None:
        """Call ``hook`` on every observer; a failing one is logged, never raised."""
        for observer in self._items:
            try:
                getattr(observer, hook)(*args, **kwargs)
            except Exception as exc:
                self._log.event(
                    logger,
                    (type(observer), hook),
                    logging.WARNING,
                    "Topics observer {name}.{hook} raised {error} ({count} time(s))",
                    name=type(observer).__qualname__,
                    hook=hook,
                    error=type(exc).__name__,
                )


#: the process-wide observers
observers = Observers()

__all__ = ["Observers", "TopicsObserver", "observers"]
