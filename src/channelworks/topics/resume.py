"""What a join with ``since`` replays, for a topic that keeps history.

The approach of consumers/resume.py: the caller joins the topic's group *first*, then calls
``read_missed``; the messages it returns are sent before any live one (the consumer handles
one message at a time), and the caller marks the returned position in its ``ResumeFilter``
so that live copies of them are dropped by offset. Recovery is all or nothing: when the log
cannot give every message after ``since``, nothing is returned and ``recovered`` is False.
"""

from __future__ import annotations

from typing import Any

from channelworks.consumers.resume import Resumed
from channelworks.exceptions import Unrecoverable
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.history import HistoryOptions, StreamPosition


async def read_missed(
    layer: BaseChannelLayer, group: str, options: HistoryOptions, since: object
) -> tuple[Resumed, list[dict[str, Any]]]:
    """``(what the join reply says, the missed messages oldest first)`` for a join of
    ``group`` with ``since`` (what the client sent: ``None``, or ``[offset, epoch]``)."""
    if "history" not in getattr(layer, "extensions", ()):
        return Resumed(recovered=since is None, position=None), []
    if since is None:  # a first visit: nothing to replay, the position to start from
        return Resumed(True, (await layer.history(group, limit=0)).position), []
    try:
        position = StreamPosition.parse(since)
    except ValueError:  # a malformed position is a position we cannot continue from
        return Resumed(False, (await layer.history(group, limit=0)).position), []
    try:
        result = await layer.history(group, since=position, limit=options.size)
    except Unrecoverable as exc:
        now = exc.position if isinstance(exc.position, StreamPosition) else None
        return Resumed(False, now), []
    return Resumed(True, result.position, len(result.messages)), result.messages


__all__ = ["read_missed"]
