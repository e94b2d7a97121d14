"""Connection logs: one line when a connection opens and one when it closes, and the
connection's id on every log record written while handling it.

- ``channelworks.connections`` gets one INFO line per accepted WebSocket and one per ended
  one (route, consumer, user id, client, close code, duration, frames). Turn it off as any
  logger: ``"channelworks.connections": {"level": "WARNING"}`` in ``LOGGING``. Each record
  also carries the fields as attributes (``record.route``, ``record.close_code``...) for a
  JSON formatter.
- ``connection_id`` is a context variable set in the connection's task before anything of
  the consumer runs, so the tasks it starts and the worker threads of sync handlers see it
  too. ``ConnectionIdFilter`` copies it into ``record.connection_id`` (``"-"`` outside a
  connection); attach it to your handlers (a filter on a logger only sees that logger's own
  records, not its children's) and put ``%(connection_id)s`` in the format.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channelworks.ops.connections import Connection

logger = logging.getLogger("channelworks.connections")

#: the id of the connection the current task or thread works for
connection_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "channelworks_connection_id", default="-"
)


class ConnectionIdFilter(logging.Filter):
    """Adds ``record.connection_id``; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "connection_id"):
            record.connection_id = connection_id.get()
        return True


def opened(connection: Connection) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    user, _ = connection.user()
    fields = {
        "event": "open",
        "connection_id": connection.id,
        "route": connection.route,
        "consumer": connection.consumer,
        "user_id": user,
        "client": connection.client,
    }
    logger.info(_line(fields), extra=fields)


def closed(connection: Connection) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    user, _ = connection.user()
    fields = {
        "event": "close" if connection.accepted else "refused",
        "connection_id": connection.id,
        "route": connection.route,
        "consumer": connection.consumer,
        "user_id": user,
        "client": connection.client,
        "close_code": connection.close_code,
        "duration": round(connection.duration, 3),
        "frames_in": connection.frames_in,
        "frames_out": connection.frames_out,
        "bytes_in": connection.bytes_in,
        "bytes_out": connection.bytes_out,
    }
    logger.info(_line(fields), extra=fields)


def _line(fields: dict[str, object]) -> str:
    """``key=value`` pairs, values quoted when they hold spaces; ``None`` as ``-``."""
    parts = []
    for key, value in fields.items():
        text = "-" if value is None or value == "" else str(value)
        if " " in text or '"' in text:
            text = '"' + text.replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


__all__ = ["ConnectionIdFilter", "connection_id", "logger"]
