"""Presence on a WebSocket consumer: one declaration tracks it in its groups (docs/presence.md).

::

    class Room(AsyncJsonWebsocketConsumer):
        groups = ["room.lobby"]
        presence = PresenceConfig(
            key=lambda consumer: str(consumer.scope["user"].pk),
            meta=lambda consumer: {"name": consumer.scope["user"].get_username()},
        )

Rules of this file:
- the consumer is tracked in its groups (or ``PresenceConfig.groups``) once its socket is
  accepted, and untracked when it ends, however it ends (a close, an error, a cancelled
  task: ``leave_groups`` runs in every case);
- with ``forward`` (the default) the client gets, as JSON text frames, one
  ``{"type": "presence.state", "group", "state"}`` per group right after the accept, then
  every ``{"type": "presence.diff", "group", "joins", "leaves"}`` the layer delivers;
  ``phx_ref`` in the metas makes both apply with Phoenix's ``Presence.syncState`` and
  ``syncDiff``. Override ``presence_diff`` to do something else with the diffs (call
  ``channelworks.layers.presence.genuine_diff`` first: a diff without the layer's token was
  forwarded by the application, not sent by the layer);
- ``key`` and ``meta`` are values or callables of the consumer, run on the event loop when the
  socket is accepted: read what ``scope`` already holds, never the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from channelworks.consumers.base import AsyncConsumer
from channelworks.consumers.handlers import framework_class
from channelworks.layers.presence import genuine_diff
from channelworks.types import Message

KeySource = str | int | Callable[[Any], object]
MetaSource = Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None


@dataclass(frozen=True)
class PresenceConfig:
    """What a consumer tracks: ``key`` (a str or int, or a callable of the consumer giving
    one), ``meta`` (a dict, or a callable giving one; default ``{}``), in ``groups`` (default:
    the consumer's ``groups``); ``forward``: send the state and the diffs to the client."""

    key: KeySource
    meta: MetaSource = None
    groups: Iterable[str] | None = None
    forward: bool = True

    def key_of(self, consumer: Any) -> str:
        key = self.key(consumer) if callable(self.key) else self.key
        return str(key) if isinstance(key, int) and not isinstance(key, bool) else key  # type: ignore[return-value]

    def meta_of(self, consumer: Any) -> dict[str, Any]:
        meta = self.meta(consumer) if callable(self.meta) else self.meta
        return dict(meta) if meta is not None else {}


@framework_class("presence_diff")
class PresenceHooks(AsyncConsumer):
    """The presence part of every WebSocket consumer (``presence`` and its handler)."""

    #: what this consumer tracks in its groups once accepted; ``None``: nothing
    presence: ClassVar[PresenceConfig | None] = None
    _presence_tracked: bool = False

    async def presence_diff(self, message: Message) -> None:
        """A layer message: presence changes in one of this socket's groups. Forwarded to
        the client as JSON when ``presence.forward`` is on (the default)."""
        config = self.presence
        if config is not None and config.forward and genuine_diff(self.channel_layer, message):
            await self._presence_to_client(
                {
                    "type": "presence.diff",
                    "group": message.get("group"),
                    "joins": message.get("joins", {}),
                    "leaves": message.get("leaves", {}),
                }
            )

    async def _track_presence(self) -> None:
        """Track this consumer in its groups (the socket was just accepted)."""
        config = self.presence
        layer, channel = self.channel_layer, self.channel_name
        if config is None or self._presence_tracked:
            return
        if layer is None or channel is None:
            raise ValueError(f"{type(self).__qualname__} has presence but no channel layer")
        groups = list(config.groups if config.groups is not None else self.groups_joined)
        # a presence's diffs go to the group's members: it must be one (and leave it at the end)
        await self.join_groups([group for group in groups if group not in self.groups_joined])
        key, meta = config.key_of(self), config.meta_of(self)
        self._presence_tracked = True  # from here on, leave_groups untracks
        for group in groups:
            await layer.presence_track(group, channel, key, meta)
        if config.forward:
            for group in groups:
                state = await layer.presence(group)
                await self._presence_to_client(
                    {"type": "presence.state", "group": group, "state": state}
                )

    async def _untrack_presence(self) -> None:
        layer, channel = self.channel_layer, self.channel_name
        if self._presence_tracked and layer is not None and channel is not None:
            self._presence_tracked = False
            await layer.presence_untrack_all(channel)

    async def _presence_to_client(self, content: dict[str, Any]) -> None:
        send_json = getattr(self, "_send_json", None)
        if send_json is not None:
            await send_json(content)
        else:
            await self._send(text_data=json.dumps(content))  # type: ignore[attr-defined]


__all__ = ["PresenceConfig", "PresenceHooks"]
