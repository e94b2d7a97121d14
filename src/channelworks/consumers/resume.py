"""Resuming a group for a client that reconnects: missed messages, then live ones, no gap and
no duplicate (docs/consumers.md "Resuming a group after a reconnect").

How it keeps that promise:

1. the consumer's channel joins the group *first*, so every message sent from then on reaches
   it live;
2. then it reads the group's history after the client's last position; a message sent
   between 1 and 2 is in that read *and* arrives live;
3. the missed messages go through ``dispatch`` in offset order, to the same handlers as live
   ones (a consumer handles one message at a time, so live messages wait in its channel
   meanwhile);
4. the live messages that follow are dropped when their offset is at or below the position
   the history read ended at, in the same epoch (``ResumeFilter``): by offset, never by
   arrival order.

If the history cannot be returned whole (``Unrecoverable``), nothing is dispatched and the
result says ``recovered=False``: tell the client to reload its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channelworks.consumers.base import AsyncConsumer
from channelworks.consumers.handlers import framework_class
from channelworks.exceptions import Unrecoverable
from channelworks.layers.history import DEFAULT_LIMIT, ResumeFilter, StreamPosition
from channelworks.types import Message


@dataclass(frozen=True)
class Resumed:
    """What ``resume_group`` did: whether the client has everything (``recovered``), how many
    missed messages it dispatched, and the group's position to hand the client (``None``
    only when the layer has no history)."""

    recovered: bool
    position: StreamPosition | None
    missed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the client: ``{"recovered": ..., "position": [offset, epoch]}``."""
        position = list(self.position) if self.position is not None else None
        return {"recovered": self.recovered, "position": position, "missed": self.missed}


@framework_class()
class GroupResume(AsyncConsumer):
    """Put before a consumer class to resume groups: ``class Room(GroupResume,
    AsyncJsonWebsocketConsumer)``; then, in ``connect`` or ``receive_json``::

        resumed = await self.resume_group("chat.lobby", since=client_position)
        await self.send_json({"type": "resumed", **resumed.as_dict()})

    ``since`` is what the client stored from the last message it got (``"__position"``,
    ``[offset, epoch]``) or ``None`` for a first visit. The group is joined (and left when the
    consumer ends, like ``groups``); with a position, the messages the client missed are
    dispatched to their handlers, oldest first, and live copies of them are then dropped.
    Async consumers only; the layer needs the ``"history"`` extension.
    """

    _resume_filter: ResumeFilter | None = None

    async def resume_group(
        self, group: str, since: object = None, *, limit: int = DEFAULT_LIMIT
    ) -> Resumed:
        """Join ``group`` and deliver what was missed after ``since`` (see the class)."""
        await self.join_groups([group])
        layer = self.channel_layer
        assert layer is not None  # join_groups refused a consumer without one
        if "history" not in getattr(layer, "extensions", ()):
            return Resumed(recovered=since is None, position=None)
        if since is None:  # a first visit: live messages after the position, nothing missed
            return self._from(Resumed(True, (await layer.history(group, limit=0)).position))
        try:
            position = StreamPosition.parse(since)
        except ValueError:
            return self._from(Resumed(False, (await layer.history(group, limit=0)).position))
        try:
            result = await layer.history(group, since=position, limit=limit)
        except Unrecoverable as exc:
            now = exc.position if isinstance(exc.position, StreamPosition) else None
            return self._from(Resumed(recovered=False, position=now))
        for message in result.messages:
            await super().dispatch(message)  # not through the filter: these are the originals
        return self._from(Resumed(True, result.position, len(result.messages)))

    def _from(self, resumed: Resumed) -> Resumed:
        """Drop live copies at or before ``resumed.position`` from now on: what a resume
        replayed, and what was sent between ``join_groups`` and the read of the log (the
        client starts from that position, whichever way the resume went)."""
        if isinstance(resumed.position, StreamPosition):
            if self._resume_filter is None:
                self._resume_filter = ResumeFilter()
            self._resume_filter.resumed(resumed.position)
        return resumed

    async def dispatch(self, message: Message) -> None:
        """Drop a live message a resume already delivered; dispatch everything else."""
        resume = self._resume_filter
        if resume is not None and not resume.fresh(message):
            return
        await super().dispatch(message)


__all__ = ["GroupResume", "Resumed"]
