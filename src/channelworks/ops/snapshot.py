"""What one process tells an operator about itself: its live connections, the groups they
joined, and every counter it keeps (layers, limits, per-route totals).

A snapshot is plain data (str keys; str, int, float, bool, lists) so that it crosses the
channel layer as one message (msgpack) and prints as JSON.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Any

from channelworks.layers.registry import channel_layers
from channelworks.limits.stats import stats as limit_stats
from channelworks.ops.connections import Connection, Observer, observer

#: connections listed per process at most (a snapshot is one layer message; control.py lists
#: fewer when they do not fit in one)
MAX_CONNECTIONS = 500
#: characters of a connection's path shown at most (clients choose their paths)
MAX_PATH = 200
#: when this process imported channelworks.ops (close enough to its start)
STARTED = time.time()


def connection_row(connection: Connection) -> dict[str, Any]:
    user, username = connection.user()
    return {
        "id": connection.id,
        "route": connection.route,
        "consumer": connection.consumer,
        "channel_name": connection.channel_name,
        "user_id": None if user is None else str(user),
        "username": username,
        "client": connection.client,
        "path": _clipped(str(connection.scope.get("path", "")), MAX_PATH),
        "since": connection.since,
        "accepted": connection.accepted,
        "groups": list(connection.groups()),
        "topics": list(connection.topics()),
        "frames_in": connection.frames_in,
        "frames_out": connection.frames_out,
        "bytes_in": connection.bytes_in,
        "bytes_out": connection.bytes_out,
    }


def layer_counters() -> dict[str, dict[str, int]]:
    """Every counter of every layer this process built, by alias."""
    return {
        alias: {
            name: value
            for name, value in dataclasses.asdict(layer.stats).items()
            if isinstance(value, int)
        }
        for alias, layer in list(channel_layers.backends.items())
        if dataclasses.is_dataclass(getattr(layer, "stats", None))
    }


def snapshot(limit: int = MAX_CONNECTIONS, found: Observer | None = None) -> dict[str, Any]:
    """This process now; at most ``limit`` connections listed (``connections_total``: all)."""
    found = found if found is not None else observer()
    connections = [] if found is None else list(found.connections())
    groups: dict[str, int] = {}
    for connection in connections:
        for group in connection.groups():
            groups[group] = groups.get(group, 0) + 1
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "process": "" if found is None else found.prefix,
        "started": STARTED,
        "now": time.time(),
        "observing": found is not None,
        "connections_total": len(connections),
        "connections": [connection_row(c) for c in connections[:limit]],
        "groups": groups,
        "layers": layer_counters(),
        "limits": limit_stats.as_dict(),
    }


def _clipped(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


__all__ = ["MAX_CONNECTIONS", "MAX_PATH", "connection_row", "layer_counters", "snapshot"]
