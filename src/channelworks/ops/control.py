"""The processes of a site answer operators through the channel layer.

Every process that serves WebSocket connections (with observation on and a channel layer
shared by processes) keeps one control channel in the group ``OPS_GROUP``, started with its
first connection. The in-memory layer reaches one process: there ``gather`` reads it directly.
Two messages travel there:

- ``ops.status`` with a ``reply_to`` channel: each process sends back one ``ops.snapshot``
  (snapshot.py). ``gather()`` sends the request and collects what arrives within a timeout:
  a process that does not answer in time is not listed (it is busy or gone).
- a close goes straight to the connection's own channel: ``{"type":
  "channelworks.admin_close", "channel": <that channel>, "code": 4403, "reason": ...}``; the
  WebSocket consumer closes with that code (``close()`` here does it, with an audit line).
  A close that does not name the consumer's own channel is ignored (and logged): a site that
  forwards client JSON into ``group_send`` must not let one client close a whole room with
  a code its members treat as final.

Whoever can send on the layer can ask and close: the layer is the site's trusted network.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from channelworks.exceptions import CloseConnection, MessageTooLarge, StopConsumer
from channelworks.layers.base import BaseChannelLayer
from channelworks.logs import AggregatedLog
from channelworks.ops.snapshot import MAX_CONNECTIONS, snapshot

logger = logging.getLogger("channelworks.ops")
#: one line per close an operator asked for
audit_logger = logging.getLogger("channelworks.ops.audit")

OPS_GROUP = "channelworks.ops"
#: the code an operator's close sends by default: clients treat it as final (no reconnect)
ADMIN_CLOSE_CODE = 4403
#: seconds between two refreshes of the control channel's membership of ``OPS_GROUP``
REFRESH = 60.0
#: lines about ignored admin_close messages, aggregated
_forged = AggregatedLog()

#: layer -> its control task in this process (one per layer, on the loop that first needed it)
_services: weakref.WeakKeyDictionary[BaseChannelLayer, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


class AdminClosed(CloseConnection):
    """An operator closed the connection (the admin live view): 4403 unless they chose."""

    code = ADMIN_CLOSE_CODE


def admin_close(message: Mapping[str, Any], channel: str | None) -> None:
    """Raise ``AdminClosed`` with the message's ``code`` (4403 unless it is another valid
    application code, 4000-4999, or 1000) and ``reason``, if the message names ``channel``
    (the consumer's own); otherwise log it and return."""
    if channel is None or message.get("channel") != channel:
        _forged.event(
            logger,
            "forged",
            logging.WARNING,
            "Ignored {count} channelworks.admin_close message(s) not naming the receiving "
            "consumer's own channel (sent through a group, or forged); the latest on {channel}",
            channel=channel,
        )
        return
    code = message.get("code", ADMIN_CLOSE_CODE)
    if not (type(code) is int and (code == 1000 or 4000 <= code <= 4999)):
        code = ADMIN_CLOSE_CODE
    reason = message.get("reason")
    raise AdminClosed(code, reason if isinstance(reason, str) else "closed by an operator")


def process_local(layer: BaseChannelLayer) -> bool:
    """Whether ``layer`` reaches this process only (the in-memory layer): then ``gather``
    reads this process's snapshot directly, and no control channel is kept in the layer
    (whose groups a test may expect to be empty once its consumers are gone)."""
    from channelworks.layers.memory import InMemoryChannelLayer

    return isinstance(layer, InMemoryChannelLayer)


def ensure_service(layer: BaseChannelLayer) -> None:
    """Make sure this process answers ``ops.status`` on ``layer`` (from the running loop)."""
    if process_local(layer):
        return
    task = _services.get(layer)
    if task is not None and not task.done():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    _services[layer] = loop.create_task(_serve(layer), name="channelworks.ops control")


async def _serve(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel("ops")
    refreshed = 0.0
    try:
        while True:
            if time.monotonic() - refreshed > REFRESH:
                await layer.group_add(OPS_GROUP, channel)
                refreshed = time.monotonic()
            try:
                async with asyncio.timeout(REFRESH):
                    message = await layer.receive(channel)
            except TimeoutError:
                continue
            await _answer(layer, message)
    except StopConsumer:  # LayerClosed: the process is stopping (lifespan shutdown)
        pass
    except Exception:  # the next connection starts it again
        logger.warning("The operations control channel stopped", exc_info=True)
    finally:
        _services.pop(layer, None)


async def _answer(layer: BaseChannelLayer, message: dict[str, Any]) -> None:
    if message.get("type") != "ops.status":
        logger.warning("Ignored an operations message of type %r", message.get("type"))
        return
    reply_to = message.get("reply_to")
    limit = message.get("limit", MAX_CONNECTIONS)
    if not isinstance(reply_to, str) or type(limit) is not int:
        logger.warning("Ignored an ops.status without a reply_to channel or a valid limit")
        return
    found = snapshot(limit)
    while True:
        try:
            await layer.send(reply_to, {"type": "ops.snapshot", "snapshot": found})
            return
        except MessageTooLarge as exc:
            # Over the layer's max_message_size (many sockets, long group lists): list half
            # as many; connections_total still says how many there are.
            rows = found["connections"]
            if not rows:
                logger.warning("Could not answer ops.status to %s: %s", reply_to, exc)
                return
            found["connections"] = rows[: len(rows) // 2]
        except Exception as exc:  # the asker gave up (full or gone): its problem, not ours
            logger.info("Could not answer ops.status to %s: %s", reply_to, exc)
            return


async def gather(
    layer: BaseChannelLayer, timeout: float = 1.0, limit: int = MAX_CONNECTIONS
) -> list[dict[str, Any]]:
    """Ask every process for its snapshot; those that answered within ``timeout`` seconds,
    sorted by host and pid. Capacity of the reply channel bounds how many answer (raise the
    layer's capacity for ``ops-reply*`` channels on sites with more processes)."""
    if process_local(layer):
        return [snapshot(limit)]
    reply_to = await layer.new_channel("ops-reply")
    await layer.group_send(OPS_GROUP, {"type": "ops.status", "reply_to": reply_to, "limit": limit})
    found: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await layer.receive(reply_to)
                if message.get("type") == "ops.snapshot":
                    found.append(message["snapshot"])
    except TimeoutError:
        pass
    return sorted(found, key=lambda s: (s.get("host", ""), s.get("pid", 0)))


async def close(
    layer: BaseChannelLayer,
    channel_name: str,
    *,
    code: int = ADMIN_CLOSE_CODE,
    reason: str = "closed by an operator",
    by: str = "",
    connection_id: str = "",
) -> None:
    """Close the connection reading ``channel_name`` with ``code``; one audit line says who."""
    audit_logger.warning(
        "operator close: by=%s connection_id=%s channel=%s code=%d reason=%r",
        by or "-",
        connection_id or "-",
        channel_name,
        code,
        reason,
    )
    await layer.send(
        channel_name,
        {
            "type": "channelworks.admin_close",
            "channel": channel_name,
            "code": code,
            "reason": reason,
        },
    )


__all__ = [
    "ADMIN_CLOSE_CODE",
    "OPS_GROUP",
    "AdminClosed",
    "admin_close",
    "close",
    "ensure_service",
    "gather",
    "process_local",
]
