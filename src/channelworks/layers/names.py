"""Naming rules for channels, groups and message types, checked once, here.

Rules (docs/channel-layer-spec.md):
- a name is a ``str`` of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100;
- a channel name may hold one ``!``: the part before it names the process that owns the
  channel (a *process-local* channel), the part after it, which must not be empty, the
  channel within that process;
- a group name never holds ``!``;
- a message is a ``dict`` whose ``type`` is a non-empty ``str`` not starting with ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from channelworks.exceptions import InvalidChannelName, InvalidMessage

MAX_NAME_LENGTH = 100
_CHANNEL = re.compile(r"[A-Za-z0-9\-_.]+(![A-Za-z0-9\-_.]+)?")
_GROUP = re.compile(r"[A-Za-z0-9\-_.]+")
#: the rule a name breaks, for ``"Channel"`` or ``"Group"`` (``BaseChannelLayer`` exposes it
#: as ``invalid_name_error``, Channels' name)
NAME_RULE = (
    "{} name must be a str shorter than 100 characters of ASCII letters, digits, hyphens, "
    "underscores or periods"
)


def require_channel_name(name: object, *, receive: bool = False) -> str:
    """Return ``name`` if it is a valid channel name, else raise ``InvalidChannelName``.

    ``receive`` is accepted for Channels' signature; the rules are the same for sending and
    receiving (a bare process prefix such as ``"specific.abc!"`` is never a channel).
    """
    if not isinstance(name, str):
        raise InvalidChannelName("channel", name, "must be a str")
    if len(name) >= MAX_NAME_LENGTH or _CHANNEL.fullmatch(name) is None:
        raise InvalidChannelName(
            "channel",
            name,
            NAME_RULE.format("Channel") + ", with at most one '!' followed by its own part",
        )
    return name


def require_group_name(name: object) -> str:
    """Return ``name`` if it is a valid group name, else raise ``InvalidChannelName``."""
    if not isinstance(name, str):
        raise InvalidChannelName("group", name, "must be a str")
    if len(name) >= MAX_NAME_LENGTH or _GROUP.fullmatch(name) is None:
        raise InvalidChannelName("group", name, NAME_RULE.format("Group"))
    return name


def require_message(message: object) -> Mapping[str, Any]:
    """Return ``message`` if it is a dict with a valid ``type``, else raise ``InvalidMessage``."""
    if not isinstance(message, dict):
        raise InvalidMessage(f"A message must be a dict, not {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str) or not kind or kind.startswith("_"):
        raise InvalidMessage(
            f"A message needs a 'type' that is a non-empty str not starting with '_', got {kind!r}"
        )
    return message


def is_process_local(name: str) -> bool:
    """Whether ``name`` is a process-local channel (it holds a ``!``)."""
    return "!" in name


def non_local_name(name: str) -> str:
    """The part of a channel name that routes to a process: up to and including ``!``."""
    head, bang, _ = name.partition("!")
    return head + bang


__all__ = [
    "MAX_NAME_LENGTH",
    "NAME_RULE",
    "is_process_local",
    "non_local_name",
    "require_channel_name",
    "require_group_name",
    "require_message",
]
