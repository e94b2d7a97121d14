"""Presence on the wire: the layer's presence (docs/presence.md) as ``presence_state`` and
``presence_diff`` payloads (docs/protocol.md), and their merge for clients.

The layer speaks ``{key: [meta, ...]}``; the wire wraps each list as ``{"metas": [...]}``
(room for per-key fields later). Every meta carries the ``phx_ref`` the layer gave it,
which is what a diff's joins and leaves are applied by (idempotently: a diff may repeat a
change the state already holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Metas = list[dict[str, Any]]
#: a client's view of one topic's presence: key -> metas
PresenceState = dict[str, Metas]


def _wire(entries: object) -> dict[str, dict[str, Metas]]:
    if not isinstance(entries, Mapping):
        return {}
    return {
        str(key): {"metas": [dict(m) for m in metas if isinstance(m, Mapping)]}
        for key, metas in entries.items()
        if isinstance(metas, (list, tuple))
    }


def state_payload(state: object) -> dict[str, Any]:
    """The ``presence_state`` payload of the layer's ``presence(group)``."""
    return _wire(state)


def diff_payload(message: Mapping[str, Any]) -> dict[str, Any]:
    """The ``presence_diff`` payload of a layer ``presence.diff`` message."""
    return {"joins": _wire(message.get("joins")), "leaves": _wire(message.get("leaves"))}


def _metas(entry: object) -> Metas:
    if isinstance(entry, Mapping):
        metas = entry.get("metas")
        if isinstance(metas, list):
            return [m for m in metas if isinstance(m, dict)]
    return []


def sync_state(payload: Mapping[str, Any]) -> PresenceState:
    """A client's state from a ``presence_state`` payload."""
    return {str(key): _metas(entry) for key, entry in payload.items() if _metas(entry)}


def sync_diff(state: PresenceState, payload: Mapping[str, Any]) -> PresenceState:
    """``state`` after a ``presence_diff`` payload (a new dict; ``state`` is unchanged).

    Joins replace metas with the same ``phx_ref`` (a diff may repeat what the state
    already holds); leaves remove metas by ``phx_ref``; a key with no metas left goes.
    """
    merged = {key: list(metas) for key, metas in state.items()}
    joins = payload.get("joins")
    for key, entry in joins.items() if isinstance(joins, Mapping) else ():
        new = _metas(entry)
        refs = {m.get("phx_ref") for m in new}
        kept = [m for m in merged.get(key, []) if m.get("phx_ref") not in refs]
        merged[key] = kept + new
    leaves = payload.get("leaves")
    for key, entry in leaves.items() if isinstance(leaves, Mapping) else ():
        refs = {m.get("phx_ref") for m in _metas(entry)}
        kept = [m for m in merged.get(key, []) if m.get("phx_ref") not in refs]
        if kept:
            merged[key] = kept
        else:
            merged.pop(key, None)
    return merged


__all__ = ["PresenceState", "diff_payload", "state_payload", "sync_diff", "sync_state"]
