"""Server push from anywhere: ``broadcast`` (sync code) and ``abroadcast`` (async code).

Both send one layer message to the topic's group (``names.group_for``); every socket that
joined the topic forwards it to its client. When the ``Topic`` class whose pattern matches
the name keeps history, the message is appended to the group's log first (the layer's
``group_send(..., history=True)``) and each member gets it with its position.

The class is looked up among the ``Topic`` classes defined in this process: a process that
broadcasts (a worker, a management command) must have imported the module that defines
them, or pass ``history=True`` itself. Under Django, the first broadcast imports the
``topics`` module of every installed app (``autodiscover_modules("topics")``).
"""

from __future__ import annotations

import re
from typing import Any

from asgiref.sync import async_to_sync

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.history import HistoryConfig, HistoryOptions, StreamPosition
from channelworks.layers.registry import get_channel_layer
from channelworks.layers.tokens import TOKEN, layer_token
from channelworks.topics.frames import MAX_TOPIC_LENGTH, is_reserved
from channelworks.topics.names import TopicPattern, group_for
from channelworks.topics.observers import observers
from channelworks.topics.topic import registered

#: the layer message type a topic's members handle (``TopicsConsumer.topics_push``)
PUSH_TYPE = "topics.push"

_discovered = False


async def abroadcast(
    topic: str,
    event: str,
    payload: dict[str, Any] | None = None,
    *,
    layer: str | BaseChannelLayer | None = DEFAULT_CHANNEL_LAYER,
    history: bool | None = None,
) -> StreamPosition | None:
    """Send ``event`` with ``payload`` to every socket that joined ``topic``.

    ``history``: ``None`` follows the topic's class, ``True``/``False`` force it. Returns the
    message's position when it went into the history, else ``None``. Raises ``ValueError``
    for a bad name, a reserved event or a payload that is not a dict, and what the layer's
    ``group_send`` raises (``MessageTooLarge``, ``LayerUnavailable``).
    """
    if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise ValueError(f"a topic is a string of 1 to {MAX_TOPIC_LENGTH} characters: {topic!r}")
    if not isinstance(event, str) or not event or is_reserved(event):
        raise ValueError(f"cannot broadcast event {event!r} (empty or reserved by the protocol)")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValueError(f"a payload is a dict, not {type(payload).__name__}")
    channel_layer = layer if isinstance(layer, BaseChannelLayer) else _layer(layer)
    cls = _class_of(topic)
    keep = history
    if cls is not None and cls.history_options is not None:
        register_history(channel_layer, cls.topic_pattern, cls.history_options)
        if keep is None:
            keep = True
    message = {
        "type": PUSH_TYPE,
        "topic": topic,
        "event": event,
        "payload": payload,
        TOKEN: layer_token(channel_layer),  # topics_push acts on nothing else (tokens.py)
    }
    position = await channel_layer.group_send(group_for(topic), message, history=keep)
    if observers:
        observers.notify("broadcast", topic, event)
    return position


def broadcast(
    topic: str,
    event: str,
    payload: dict[str, Any] | None = None,
    *,
    layer: str | BaseChannelLayer | None = DEFAULT_CHANNEL_LAYER,
    history: bool | None = None,
) -> StreamPosition | None:
    """``abroadcast`` for sync code (views, signals, management commands, threads). From a
    coroutine, await ``abroadcast`` instead (this raises ``RuntimeError`` on an event loop)."""
    return async_to_sync(abroadcast)(topic, event, payload, layer=layer, history=history)


def register_history(
    layer: BaseChannelLayer, pattern: TopicPattern, options: HistoryOptions
) -> None:
    """Make ``layer`` keep the groups of ``pattern`` with ``options`` (once per layer): the
    layer's own ``history`` patterns come first, so a project's setting wins."""
    config = getattr(layer, "history_config", None)
    if not isinstance(config, HistoryConfig):
        return
    if any(regex is pattern.group_regex for regex, _ in config.patterns):
        return
    setting: dict[re.Pattern[str], HistoryOptions] = dict(config.patterns)
    setting[pattern.group_regex] = options
    layer.history_config = HistoryConfig(setting)  # type: ignore[attr-defined]


def _layer(alias: str | None) -> BaseChannelLayer:
    found = get_channel_layer(alias or DEFAULT_CHANNEL_LAYER)
    if found is None:
        raise ValueError(f"no channel layer {alias!r} is configured: topics need one")
    return found


def _class_of(topic: str) -> Any:
    global _discovered
    if not _discovered:
        _discovered = True
        _autodiscover()
    return registered(topic)


def _autodiscover() -> None:
    try:
        from django.apps import apps
        from django.utils.module_loading import autodiscover_modules
    except ImportError:  # pragma: no cover - Django is a dependency
        return
    if apps.ready:
        autodiscover_modules("topics")


__all__ = ["PUSH_TYPE", "abroadcast", "broadcast", "register_history"]
