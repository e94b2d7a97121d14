"""Properties of the topics frames against hostile input (Hypothesis)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgpack  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from channelworks.topics.frames import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    Codec,
    Frame,
    ProtocolError,
)
from tests.fuzz.strategies import fuzz_settings

JSON, MSGPACK = Codec(JSON_SUBPROTOCOL), Codec(MSGPACK_SUBPROTOCOL)


def hostile_values() -> st.SearchStrategy[Any]:
    """Anything msgpack can carry: every int size, NaN, surrogates, binaries, extension
    types, non-string keys, deep nesting."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**64), max_value=2**65)
        | st.floats()
        | st.text()
        | st.binary(max_size=8)
        | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4))
    )
    keys = st.text(max_size=5) | st.binary(max_size=3)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=20,
    )


def deliverable(frame: Frame) -> None:
    """What the server accepted can be sent to a socket of either subprotocol."""
    pushed = Frame("1", None, frame.topic, "said", frame.payload)
    if any(isinstance(v, bytes) for v in _leaves(frame.payload)):
        return  # binaries reach msgpack sockets only (docs/protocol.md)
    assert json.loads(JSON.encode(pushed)) == json.loads(json.dumps(pushed.as_list()))
    MSGPACK.encode(pushed)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


@fuzz_settings(max_examples=400)
@given(payload=hostile_values(), event=st.text(min_size=1, max_size=5))
def test_a_msgpack_frame_is_a_valid_frame_every_socket_can_take_or_a_4400(
    payload: Any, event: str
) -> None:
    try:
        data = msgpack.packb(["1", "2", "room:x", event, payload], use_bin_type=True)
    except (ValueError, OverflowError, UnicodeEncodeError):
        return  # msgpack cannot carry it: no client can send it either
    try:
        frame = MSGPACK.decode_client_frame(None, data)
    except ProtocolError:  # 4400
        return
    deliverable(frame)


@fuzz_settings(max_examples=400)
@given(payload=hostile_values())
def test_a_json_frame_is_a_valid_frame_every_socket_can_take_or_a_4400(payload: Any) -> None:
    try:
        text = json.dumps(["1", "2", "room:x", "e", payload])
    except (TypeError, ValueError):
        return  # not JSON (bytes, extension types, keys JSON has no text for)
    try:
        frame = JSON.decode_client_frame(text, None)
    except ProtocolError:  # 4400
        return
    deliverable(frame)


@fuzz_settings(max_examples=300)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_are_a_frame_or_a_4400(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):  # 4400; anything else fails the test
        MSGPACK.decode_client_frame(None, data)
