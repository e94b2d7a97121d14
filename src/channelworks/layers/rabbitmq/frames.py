"""AMQP 0-9-1 frames the layer writes itself, for speed: publishes and acknowledgements.

Rules of this file:
- the bytes are exactly what pamqp (aiormq's codec) marshals for the same frame: the tests
  compare them (tests/layers/rabbitmq/test_fast_paths.py);
- a publish is a ``Basic.Publish`` method frame, a content header whose only property is
  ``message-id`` (when given: aiormq matches a returned message to its publish by it; a
  message without one is transient, as ``delivery_mode`` 1 would say), and the body split into
  frames of at most ``frame_max - 8`` bytes;
- the method frame of a (channel, exchange, routing key, mandatory) is built once and kept, a
  few thousand at most: a point-to-point sender publishes to the same few queues again and
  again.
"""

from __future__ import annotations

import struct

#: frame type, channel number, payload size
_FRAME = struct.Struct(">BHI")
#: class 60 (basic), weight 0, body size, property flags
_HEADER = struct.Struct(">HHQH")
#: frame type 1, channel, size 13, class 60, method 80 (ack), delivery tag, multiple
_ACK = struct.Struct(">BHIHHQB")
END = b"\xce"
#: Basic.Publish: class 60, method 40, reserved short 0
_PUBLISH = b"\x00\x3c\x00\x28\x00\x00"
_MESSAGE_ID = 0x0080
_KEPT = 4096

_methods: dict[tuple[int, str, str, bool], bytes] = {}


def short_string(text: str, what: str) -> bytes:
    data = text.encode()
    if len(data) > 255:
        raise ValueError(f"{what} is longer than 255 bytes: {text[:40]!r}...")
    return bytes((len(data),)) + data


def publish_method(channel: int, exchange: str, key: str, mandatory: bool) -> bytes:
    """The ``Basic.Publish`` method frame (kept: see the rules)."""
    found = _methods.get((channel, exchange, key, mandatory))
    if found is None:
        payload = (
            _PUBLISH
            + short_string(exchange, "exchange name")
            + short_string(key, "routing key")
            + (b"\x01" if mandatory else b"\x00")
        )
        found = _FRAME.pack(1, channel, len(payload)) + payload + END
        if len(_methods) >= _KEPT:
            _methods.clear()
        _methods[(channel, exchange, key, mandatory)] = found
    return found


def publish(
    channel: int,
    exchange: str,
    key: str,
    mandatory: bool,
    body: bytes,
    message_id: bytes | None,
    frame_max: int,
) -> bytes:
    """Every frame of one publish, as one ``bytes``."""
    if message_id is None:
        header = _HEADER.pack(60, 0, len(body), 0)
    else:
        header = _HEADER.pack(60, 0, len(body), _MESSAGE_ID) + bytes((len(message_id),))
        header += message_id
    parts = [
        publish_method(channel, exchange, key, mandatory),
        _FRAME.pack(2, channel, len(header)),
        header,
        END,
    ]
    step = max(frame_max - 8, 1) if frame_max else len(body) or 1
    for start in range(0, len(body), step):
        chunk = body[start : start + step]
        parts += (_FRAME.pack(3, channel, len(chunk)), chunk, END)
    return b"".join(parts)


def ack(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """A ``Basic.Ack`` method frame."""
    return _ACK.pack(1, channel, 13, 60, 80, delivery_tag, 1 if multiple else 0) + END


__all__ = ["ack", "publish", "publish_method"]
