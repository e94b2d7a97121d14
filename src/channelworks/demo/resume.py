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
    _, log = _read_log(topic, limit=0)
    return None if log is None else list(log.position)


def topic_holds_messages(topic: str) -> bool | None:
    """Whether ``topic``'s log still holds a message (a join with an old position would
    replay it); ``None`` when the layer cannot be reached (logged). Without history: False.
    Sync code (a form)."""
    reached, log = _read_log(topic, limit=1)
    if not reached:
        return None
    return log is not None and bool(log.messages)


def _read_log(topic: str, limit: int) -> tuple[bool, Any]:
    """``(reached, the layer's HistoryResult)`` for ``topic`` with ``limit``: ``(True, None)``
    without history, ``(False, None)`` when the layer cannot be reached (logged)."""
    from asgiref.sync import async_to_sync

    from channelworks.layers import get_channel_layer
    from channelworks.topics import group_for

    layer = get_channel_layer()
    if layer is None or not keeps_history(layer):
        return True, None
    try:
        return True, async_to_sync(layer.history)(group_for(topic), limit=limit)
    except Exception:
        logger.exception("could not read the log of topic %s", topic)
        return False, None
