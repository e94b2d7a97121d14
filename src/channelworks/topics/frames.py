"""The frames of the topics protocol (docs/protocol.md), sans I/O: decode, validate, encode.

Shared by the server (``channelworks.topics``) and the Python client (``channelworks.client``);
no Django, no sockets here. A frame is ``[join_ref, ref, topic, event, payload]``, plus a
sixth element, the position ``[offset, epoch]``, on server pushes of topics with history.

Rules: ``decode_client_frame`` is the only gate for what a client sends; whatever it lets
through has the types the spec says. Bad input raises ``ProtocolError`` (close 4400) with a
short reason that names what was wrong, never the frame itself (it may be huge).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

from channelworks.exceptions import CloseConnection

#: the subprotocols of version 1: JSON text frames, and msgpack binary frames
JSON_SUBPROTOCOL = "channelworks.v1"
MSGPACK_SUBPROTOCOL = "channelworks.v1.msgpack"
#: the topic of the socket itself (heartbeats)
SOCKET_TOPIC = "$"
MAX_TOPIC_LENGTH = 200
MAX_EVENT_LENGTH = 100
#: levels of arrays and objects a client's payload may nest (itself the first)
MAX_PAYLOAD_DEPTH = 100
#: the integers every layer and both subprotocols carry (msgpack's range)
INT_RANGE = (-(2**63), 2**64 - 1)

# events
JOIN = "join"
LEAVE = "leave"
HEARTBEAT = "heartbeat"
REPLY = "reply"
CLOSE = "close"
ERROR = "error"
PRESENCE_STATE = "presence_state"
PRESENCE_DIFF = "presence_diff"
#: events a client may not push to a topic's ``handle_in`` (nor broadcast from the server)
RESERVED_EVENTS = frozenset(
    {JOIN, LEAVE, HEARTBEAT, REPLY, CLOSE, ERROR, PRESENCE_STATE, PRESENCE_DIFF}
)

# close codes (socket level)
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 4400
SESSION_ENDED = 4401
FORBIDDEN = 4403
HEARTBEAT_TIMEOUT = 4408


class ProtocolError(CloseConnection):
    """A frame that breaks the protocol: the socket is closed with 4400 and ``reason``."""

    code = PROTOCOL_ERROR


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame. ``position`` is ``(offset, epoch)`` on pushes of topics with history."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: dict[str, Any]
    position: tuple[int, str] | None = None

    def as_list(self) -> list[Any]:
        items: list[Any] = [self.join_ref, self.ref, self.topic, self.event, self.payload]
        if self.position is not None:
            items.append(list(self.position))
        return items


def is_reserved(event: str) -> bool:
    """Whether ``event`` belongs to the protocol (clients cannot push it, apps cannot send it)."""
    return event in RESERVED_EVENTS or event.startswith("$")


class Codec:
    """Encodes and decodes frames of one subprotocol (``JSON_SUBPROTOCOL`` or msgpack)."""

    def __init__(self, subprotocol: str = JSON_SUBPROTOCOL) -> None:
        if subprotocol not in (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL):
            raise ValueError(f"unknown topics subprotocol {subprotocol!r}")
        if subprotocol == MSGPACK_SUBPROTOCOL and not msgpack_available():
            raise ValueError(f"{MSGPACK_SUBPROTOCOL} needs the msgpack package")
        self.subprotocol = subprotocol
        self.binary = subprotocol == MSGPACK_SUBPROTOCOL

    def encode(self, frame: Frame) -> str | bytes:
        """The WebSocket frame data (text for JSON, bytes for msgpack). Raises ``TypeError``
        or ``ValueError`` for a value this subprotocol cannot carry (bytes or NaN in JSON, an
        integer beyond 64 bits, a lone surrogate): the caller drops the frame."""
        items = frame.as_list()
        if self.binary:
            import msgpack  # type: ignore[import-untyped]

            data: bytes = msgpack.packb(items, use_bin_type=True)
            return data
        text = json.dumps(items, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if not text.isascii():
            text.encode()  # a lone surrogate cannot be sent: UnicodeEncodeError here, not in send
        return text

    def loads(self, text: str | None, data: bytes | None) -> Any:
        """The document a WebSocket frame carries; ``ProtocolError`` if it is not one."""
        if self.binary:
            if data is None:
                raise ProtocolError(reason="text frame on the msgpack subprotocol")
            import msgpack

            try:
                return msgpack.unpackb(data, raw=False, strict_map_key=True)
            except Exception as exc:  # msgpack raises several unrelated types
                raise ProtocolError(reason="invalid msgpack") from exc
        if text is None:
            raise ProtocolError(reason="binary frame on the JSON subprotocol")
        try:
            return json.loads(text)
        except RecursionError as exc:
            raise ProtocolError(reason="JSON nested too deep") from exc
        except ValueError as exc:
            raise ProtocolError(reason="invalid JSON") from exc

    def decode_client_frame(self, text: str | None, data: bytes | None) -> Frame:
        """A frame a client sent, validated (``ProtocolError`` otherwise)."""
        return client_frame(self.loads(text, data), json_text=not self.binary)

    def decode_server_frame(self, text: str | None, data: bytes | None) -> Frame:
        """A frame a server sent (for clients); ``ProtocolError`` if malformed."""
        return server_frame(self.loads(text, data))


def client_frame(items: Any, *, json_text: bool = False) -> Frame:
    """Validate a decoded client frame: a 5-element array of the spec's types. With
    ``json_text``, its payload is read as JavaScript would (``as_javascript_reads``)."""
    if not isinstance(items, list):
        raise ProtocolError(reason="a frame must be an array")
    if len(items) != 5:
        raise ProtocolError(reason=f"a frame must have 5 elements, not {len(items)}")
    join_ref, ref, topic, event, payload = items
    frame = Frame(
        _ref(join_ref, "join_ref"),
        _ref(ref, "ref"),
        _topic(topic),
        _event(event),
        _payload(payload),
    )
    problem = unportable(payload)
    if json_text and problem in _REPAIRABLE:
        frame = replace(frame, payload=as_javascript_reads(payload))
        problem = unportable(frame.payload)
    if problem is not None:
        raise ProtocolError(reason=f"payload {problem}")
    return frame


def server_frame(items: Any) -> Frame:
    """Validate a decoded server frame: 5 elements, or 6 with a position."""
    if not isinstance(items, list) or len(items) not in (5, 6):
        raise ProtocolError(reason="a server frame must be an array of 5 or 6 elements")
    position = None
    if len(items) == 6:
        value = items[5]
        if (
            not isinstance(value, list)
            or len(value) != 2
            or type(value[0]) is not int
            or not isinstance(value[1], str)
        ):
            raise ProtocolError(reason="a position must be [offset, epoch]")
        position = (value[0], value[1])
    join_ref, ref, topic, event, payload = items[:5]
    return Frame(
        _ref(join_ref, "join_ref"),
        _ref(ref, "ref"),
        _topic(topic),
        _event(event),
        _payload(payload),
        position,
    )


def _ref(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        if isinstance(value, str) and len(value) > MAX_EVENT_LENGTH:
            raise ProtocolError(reason=f"{name} longer than {MAX_EVENT_LENGTH} characters")
        return value if value is None else _unicode(value, name)
    raise ProtocolError(reason=f"{name} must be a string or null")


def _topic(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError(reason="topic must be a non-empty string")
    if len(value) > MAX_TOPIC_LENGTH:
        raise ProtocolError(reason=f"topic longer than {MAX_TOPIC_LENGTH} characters")
    return _unicode(value, "topic")


def _event(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError(reason="event must be a non-empty string")
    if len(value) > MAX_EVENT_LENGTH:
        raise ProtocolError(reason=f"event longer than {MAX_EVENT_LENGTH} characters")
    return _unicode(value, "event")


def _unicode(value: str, name: str) -> str:
    if not _well_formed(value):
        raise ProtocolError(reason=f"{name} is not valid Unicode (a lone surrogate)")
    return value


def _well_formed(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_SURROGATE = "has a string that is not valid Unicode (a lone surrogate)"
_BIG_INT = "has an integer beyond 64 bits"
_REPAIRABLE = (_SURROGATE, _BIG_INT)


def as_javascript_reads(value: Any, depth: int = 1) -> Any:
    """``value`` (decoded JSON) with what JSON text may hold but a browser would not keep:
    an integer beyond 64 bits becomes a float (JavaScript reads every number as one, and
    ``JSON.stringify(1e20)`` writes an integer), a lone surrogate (``"\\ud800"``, which
    ``JSON.stringify`` escapes from a string cut inside a pair) becomes U+FFFD. Returns a
    copy: call it only when ``unportable`` found one of them."""
    if depth > MAX_PAYLOAD_DEPTH:
        return value  # unportable says so
    kind = type(value)
    if kind is dict:
        return {_javascript_str(k): as_javascript_reads(v, depth + 1) for k, v in value.items()}
    if kind is list:
        return [as_javascript_reads(v, depth + 1) for v in value]
    if kind is str:
        return _javascript_str(value)
    if kind is int and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        try:
            return float(value)
        except OverflowError:  # beyond a double too: unportable says so
            return value
    return value


def _javascript_str(text: Any) -> Any:
    if type(text) is not str or _well_formed(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def unportable(payload: dict[str, Any]) -> str | None:
    """What keeps a client's ``payload`` from reaching every member, or ``None``.

    A payload holds JSON's values only, so that the server can forward it to sockets of
    either subprotocol and through every layer: objects with string keys, arrays, strings
    (valid Unicode), finite numbers, integers within 64 bits (``INT_RANGE``), booleans and
    null, nested at most ``MAX_PAYLOAD_DEPTH`` levels. msgpack's binaries are allowed too
    (the JS client sends ``Uint8Array`` as them); extension types and non-string keys are
    not. Walked without recursion: a hostile frame cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            return f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"
        if isinstance(container, dict):
            for key in container:
                if type(key) is not str:
                    return "has an object key that is not a string"
                if not _well_formed(key):
                    return _SURROGATE
            items: Any = container.values()
        else:
            items = container
        for item in items:
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif kind is str:
                if not _well_formed(item):
                    return _SURROGATE
            elif kind is int:
                if not INT_RANGE[0] <= item <= INT_RANGE[1]:
                    return _BIG_INT
            elif kind is float:
                if not math.isfinite(item):
                    return "has a number that is not finite (NaN or Infinity)"
            elif item is not None and kind is not bool and kind is not bytes:
                return f"has a value of a type JSON does not have ({kind.__name__})"
    return None


def _payload(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(reason="payload must be an object")
    return value


def msgpack_available() -> bool:
    try:
        import msgpack  # noqa: F401
    except ImportError:
        return False
    return True


def choose_subprotocol(offered: list[str]) -> str | None:
    """The subprotocol to accept from the client's list (its order of preference): the first
    of ours, ``JSON_SUBPROTOCOL`` when none was offered, ``None`` to refuse the handshake."""
    if not offered:
        return JSON_SUBPROTOCOL
    for name in offered:
        if name == JSON_SUBPROTOCOL or (name == MSGPACK_SUBPROTOCOL and msgpack_available()):
            return name
    return None


__all__ = [
    "CLOSE",
    "ERROR",
    "FORBIDDEN",
    "GOING_AWAY",
    "HEARTBEAT",
    "HEARTBEAT_TIMEOUT",
    "INT_RANGE",
    "JOIN",
    "JSON_SUBPROTOCOL",
    "LEAVE",
    "MAX_EVENT_LENGTH",
    "MAX_PAYLOAD_DEPTH",
    "MAX_TOPIC_LENGTH",
    "MSGPACK_SUBPROTOCOL",
    "NORMAL",
    "PRESENCE_DIFF",
    "PRESENCE_STATE",
    "PROTOCOL_ERROR",
    "REPLY",
    "RESERVED_EVENTS",
    "SESSION_ENDED",
    "SOCKET_TOPIC",
    "Codec",
    "Frame",
    "ProtocolError",
    "as_javascript_reads",
    "choose_subprotocol",
    "client_frame",
    "is_reserved",
    "msgpack_available",
    "server_frame",
    "unportable",
]
