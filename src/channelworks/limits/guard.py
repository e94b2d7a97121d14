"""One connection's limits at run time, made when its handshake arrives: ``admit``.

This is what the consumer runtime holds (``ConnectionGuard``); the decisions live in the
other modules of this package. Rule: a guard that was made must be ``release()``d when its
connection ends, however it ends (the consumer runtime does it in a ``finally``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable

from channelworks.limits.bucket import Inbound
from channelworks.limits.config import Limits
from channelworks.limits.connections import Connections, Slot, connections
from channelworks.limits.handshake import handshake_refusal
from channelworks.limits.logs import limit_log, logger
from channelworks.limits.outbound import SendWatch, Watchdog, watchdog
from channelworks.limits.stats import stats
from channelworks.types import Scope

_REFUSALS = {
    "headers": "its headers are over max_header_bytes={limits.max_header_bytes}",
    "subprotocols": "it offers more than max_subprotocols={limits.max_subprotocols}",
    "path": "its path is over max_path_length={limits.max_path_length}",
    "process": "this process has max_connections={limits.max_connections} open",
    "user": "its user has max_connections_per_user={limits.max_connections_per_user} open",
}

#: the ``stats`` counter of each refusal
_COUNTERS = {
    "headers": "refused_headers",
    "subprotocols": "refused_subprotocols",
    "path": "refused_path",
    "process": "refused_process_cap",
    "user": "refused_user_cap",
}


class ConnectionGuard:
    """The limits of one admitted connection: its inbound buckets and its send watch."""

    __slots__ = ("_watchdog", "address", "inbound", "limits", "slot", "watch", "where")

    def __init__(
        self,
        limits: Limits,
        slot: Slot,
        inbound: Inbound | None,
        watch: SendWatch | None,
        address: str | None = None,
        where: Connections = connections,
    ) -> None:
        self.limits = limits
        self.slot = slot
        self.inbound = inbound
        self.watch = watch
        #: the client address whose floods are remembered (None: not remembered)
        self.address = address
        self.where = where
        self._watchdog: Watchdog | None = None
        if watch is not None:
            self._watchdog = watchdog()
            self._watchdog.add(watch)

    def release(self, now: float | None = None) -> None:
        """The connection ended: free its slot and stop watching its sends (idempotent). If
        it met its inbound limits, its address keeps its spent buckets until they refill
        (``flood_memory``)."""
        inbound, address = self.inbound, self.address
        if inbound is not None and address is not None:
            self.address = None
            if now is None:
                now = time.monotonic()
            if inbound.flooded(now):
                self.where.remember_flood(address, inbound.tats(), now)
        self.slot.release()
        if self._watchdog is not None and self.watch is not None:
            self._watchdog.discard(self.watch)
            self._watchdog = None


def admit(
    scope: Scope,
    limits: Limits,
    user: Hashable | None,
    now: float,
    where: Connections = connections,
    owner: object = None,
) -> ConnectionGuard | str:
    """A guard for a new connection, or the reason it is refused (counted and logged).

    ``user`` is the key the per-user limits count under (``None``: anonymous); ``owner`` the
    consumer (whose sends a slow-client trip cancels).
    """
    slot = handshake_refusal(scope, limits) or where.admit(
        user, limits.max_connections, limits.max_connections_per_user
    )
    if isinstance(slot, str):
        reason, counter = slot, _COUNTERS[slot]
        setattr(stats, counter, getattr(stats, counter) + 1)
        limit_log.event(
            logger,
            ("refused", reason),
            logging.WARNING,
            "Refused {count} WebSocket handshake(s): {why}; the latest to {path} "
            "(stats.{counter}={total})",
            why=_REFUSALS[reason].format(limits=limits),
            path=str(scope.get("path"))[:200],  # the path may be the oversized part
            counter=counter,
            total=getattr(stats, counter),
        )
        return reason
    inbound = None
    if limits.messages_per_second or limits.bytes_per_second or limits.user_messages_per_second:
        inbound = Inbound(
            _pair(limits.messages_per_second, limits.message_burst),
            _pair(limits.bytes_per_second, limits.bytes_burst),
            now,
            None
            if user is None or limits.user_messages_per_second is None
            else where.user_bucket(
                user, limits.user_messages_per_second, limits.user_message_burst, now
            ),
        )
    address = None
    if inbound is not None and limits.flood_memory:
        address = _address(scope)
        spent = None if address is None else where.flood_left(address, now)
        if spent is not None:
            inbound.inherit(*spent)
    watch = None
    if limits.send_timeout is not None or limits.max_pending_sends is not None:
        watch = SendWatch(limits.send_timeout, limits.max_pending_sends, owner)
    return ConnectionGuard(limits, slot, inbound, watch, address, where)


def _address(scope: Scope) -> str | None:
    """The client's address (host without port), or None when the server gives none."""
    client = scope.get("client")
    if not client:
        return None
    host = client[0]
    return host if isinstance(host, str) and host else None


def _pair(rate: float | None, burst: float) -> tuple[float, float] | None:
    return None if rate is None else (rate, burst)


def user_key(scope: Scope) -> Hashable | None:
    """The default per-user key: the authenticated user's primary key, else ``None``.

    A user not loaded yet (a lazy ``scope["user"]`` on the event loop) counts as anonymous:
    loading it would block on the database.
    """
    user = scope.get("user")
    if user is None:
        return None
    try:
        if not user.is_authenticated:
            return None
        key: Hashable = ("user", user.pk)
    except Exception:  # an unresolved lazy user refuses to load here
        return None
    return key


__all__ = ["ConnectionGuard", "admit", "user_key"]
