"""Limits on a WebSocket handshake, checked on the scope before the consumer accepts.

Pure: a scope in, the first limit it breaks out (or ``None``). The names returned are the
``stats`` counters' suffixes (``refused_<name>``).
"""

from __future__ import annotations

from channelworks.limits.config import Limits
from channelworks.types import Scope


def handshake_refusal(scope: Scope, limits: Limits) -> str | None:
    """``"headers"``, ``"subprotocols"`` or ``"path"`` if the handshake breaks that limit."""
    if limits.max_header_bytes is not None:
        size = 0
        for name, value in scope.get("headers") or ():
            size += len(name) + len(value)
        if size > limits.max_header_bytes:
            return "headers"
    offered = len(scope.get("subprotocols") or ())
    if limits.max_subprotocols is not None and offered > limits.max_subprotocols:
        return "subprotocols"
    if limits.max_path_length is not None:
        raw = scope.get("raw_path")
        length = len(raw) if raw is not None else len(scope.get("path", "").encode())
        query = scope.get("query_string") or b""
        if length + (len(query) + 1 if query else 0) > limits.max_path_length:
            return "path"
    return None


__all__ = ["handshake_refusal"]
