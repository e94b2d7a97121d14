"""Remove sockets from a topic from outside it: ``kick`` (sync code) and ``akick`` (async).

Both send one ``topics.kick`` layer message to the topic's group, so they work from any
process (a view, the admin, a management command). Each member socket decides whether it is
meant: every member, the sockets of one user (``user_id``: compared with
``str(scope["user"].pk)`` of an authenticated user) or one socket (``channel``: its channel
name, ``Topic.socket.channel_name``). A socket meant leaves the topic as ``Topic.close``
makes it (its ``leave`` runs, its presence is untracked) and gets ``close`` with ``reason``:
the clients do not rejoin on their own. Nothing stops a client from joining again; refuse it
in ``Topic.join`` when that matters (a ban). The message carries the layer's token
(layers/tokens.py): a ``topics.kick`` an application forwarded from a client kicks nobody.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.registry import get_channel_layer
from channelworks.layers.tokens import TOKEN, layer_token
from channelworks.topics.frames import MAX_TOPIC_LENGTH
from channelworks.topics.names import group_for
from channelworks.types import Message, Scope

#: the layer message type a topic's members handle (``TopicsConsumer.topics_kick``)
KICK_TYPE = "topics.kick"


async def akick(
    topic: str,
    *,
    user_id: object = None,
    channel: str | None = None,
    reason: str = "kicked",
    layer: str | BaseChannelLayer | None = DEFAULT_CHANNEL_LAYER,
) -> None:
    """Remove from ``topic`` the sockets of ``user_id``, the socket ``channel``, or (with
    neither) every socket. The clients get ``close`` with ``reason``. Raises ``ValueError``
    for a bad topic name or reason, and what the layer's ``group_send`` raises."""
    if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise ValueError(f"a topic is a string of 1 to {MAX_TOPIC_LENGTH} characters: {topic!r}")
    if not isinstance(reason, str) or not reason:
        raise ValueError(f"a kick's reason is a non-empty string, not {reason!r}")
    if channel is not None and not isinstance(channel, str):
        raise ValueError(f"channel is a channel name, not {channel!r}")
    channel_layer = (
        layer
        if isinstance(layer, BaseChannelLayer)
        else get_channel_layer(layer or DEFAULT_CHANNEL_LAYER)
    )
    if channel_layer is None:
        raise ValueError(f"no channel layer {layer!r} is configured: topics need one")
    message: dict[str, Any] = {
        "type": KICK_TYPE,
        "topic": topic,
        "reason": reason,
        TOKEN: layer_token(channel_layer),  # topics_kick acts on nothing else (tokens.py)
    }
    if user_id is not None:
        message["user_id"] = str(user_id)
    if channel is not None:
        message["channel"] = channel
    await channel_layer.group_send(group_for(topic), message)


def kick(
    topic: str,
    *,
    user_id: object = None,
    channel: str | None = None,
    reason: str = "kicked",
    layer: str | BaseChannelLayer | None = DEFAULT_CHANNEL_LAYER,
) -> None:
    """``akick`` for sync code (this raises ``RuntimeError`` on an event loop)."""
    async_to_sync(akick)(topic, user_id=user_id, channel=channel, reason=reason, layer=layer)


def meant(message: Message, scope: Scope, channel_name: str | None) -> bool:
    """Whether the socket with ``scope`` and ``channel_name`` is one ``message`` kicks."""
    wanted_channel = message.get("channel")
    if wanted_channel is not None and wanted_channel != channel_name:
        return False
    wanted_user = message.get("user_id")
    if wanted_user is None:
        return True
    user = scope.get("user")
    pk = getattr(user, "pk", None)
    return (
        bool(getattr(user, "is_authenticated", False)) and pk is not None and str(pk) == wanted_user
    )


__all__ = ["KICK_TYPE", "akick", "kick", "meant"]
