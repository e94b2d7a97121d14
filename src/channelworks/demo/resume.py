"""Where a topic's log stands, for a page to join the topic from there (nothing missed
between the page and its socket), and whether it still holds messages."""

from __future__ import annotations

import logging
from typing import Any

from channelworks.layers.base import BaseChannelLayer

logger = logging.getLogger(__name__)


def keeps_history(layer: BaseChannelLayer) -> bool:
    return "history" in getattr(layer, "extensions", ())


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


def topic_holds_messages(topic: str) -> bool | None:
    """Whether ``topic``'s log still holds a message (a join with an old position would
    replay it); ``None`` when the layer cannot be reached (logged). Without history: False.
    Sync code (a form)."""
    from asgiref.sync import async_to_sync

    from channelworks.layers import get_channel_layer
    from channelworks.topics import group_for

    layer = get_channel_layer()
    if layer is None or not keeps_history(layer):
        return False
    try:
        result = async_to_sync(layer.history)(group_for(topic), limit=1)
    except Exception:
        logger.exception("could not read the log of topic %s", topic)
        return None
    return bool(result.messages)
