"""What the demo's live pages need to miss nothing across a reconnect.

The chat rooms and the live blog send their group messages *with history*: the layer keeps
a short log per group and every message carries its position (``"__position"``). A page
remembers the position of the last message it got and reconnects with it
(``?offset=<n>&epoch=<e>``); the consumer (``GroupResume``) then replays what the page
missed from the log, or, when the log cannot continue from there (a restarted in-memory
layer, a position too old), says so and the page's state is rebuilt from the database. A
layer without history (RabbitMQ today) always takes the database way.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from channelworks.layers.base import BaseChannelLayer
from channelworks.types import Scope

logger = logging.getLogger(__name__)

#: the largest id a database integer holds
MAX_ID = 2**63 - 1


def keeps_history(layer: BaseChannelLayer) -> bool:
    return "history" in getattr(layer, "extensions", ())


async def send_kept(layer: BaseChannelLayer, group: str, message: dict[str, Any]) -> None:
    """``group_send`` with history where the layer has it, plain otherwise."""
    if keeps_history(layer):
        await layer.group_send(group, message, history=True)
    else:
        await layer.group_send(group, message)


def query(scope: Scope) -> dict[str, str]:
    """The socket's query string, one value per name (the last one)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: items[-1] for name, items in values.items()}


def position_of(scope: Scope) -> list[Any] | None:
    """The ``[offset, epoch]`` the page sent (``GroupResume`` validates it), or ``None`` for
    a page that has none yet. A malformed one comes back as given, to be refused there."""
    params = query(scope)
    if "offset" not in params and "epoch" not in params:
        return None
    offset = params.get("offset", "")
    number = int(offset) if offset.isascii() and offset.isdigit() else offset
    return [number, params.get("epoch", "")]


def id_of(scope: Scope, name: str) -> int | None:
    """The id under ``name`` in the socket's query string, if it is one."""
    value = query(scope).get(name, "")
    if value.isascii() and value.isdigit() and int(value) <= MAX_ID:
        return int(value)
    return None


def topic_position(topic: str) -> list[Any] | None:
    """The position of ``topic``'s log now (``[offset, epoch]``), for a page to join the topic
    with: read *before* the page reads the database, whatever is broadcast after it is then
    replayed by the join (the page skips what it shows already). ``None`` without history,
    or when the layer cannot be reached (logged): the page then joins from its first live push.
    Sync code (a view)."""
    from asgiref.sync import async_to_sync

    from channelworks.layers import get_channel_layer
    from channelworks.topics import group_for

    layer = get_channel_layer()
    if layer is None or not keeps_history(layer):
        return None
    try:
        result = async_to_sync(layer.history)(group_for(topic), limit=0)
    except Exception:
        logger.exception("could not read the position of topic %s", topic)
        return None
    return list(result.position)
