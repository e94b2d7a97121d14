"""Frames of the topics protocol: what a client may send, what the server encodes."""

from __future__ import annotations

import json

import msgpack  # type: ignore[import-untyped]
import pytest

from channelworks.topics.frames import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    Codec,
    Frame,
    ProtocolError,
    choose_subprotocol,
    is_reserved,
)


def test_a_valid_client_frame_decodes_with_its_types() -> None:
    frame = Codec().decode_client_frame('["1","2","room:lobby","say",{"body":"hi"}]', None)
    assert frame == Frame("1", "2", "room:lobby", "say", {"body": "hi"})


def test_null_refs_are_allowed() -> None:
    frame = Codec().decode_client_frame('[null,null,"$","heartbeat",{}]', None)
    assert (frame.join_ref, frame.ref) == (None, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid JSON"),
        ('{"topic": "x"}', "a frame must be an array"),
        ('["1","2","t","e"]', "a frame must have 5 elements, not 4"),
        ('["1","2","t","e",{},[1,"e"]]', "a frame must have 5 elements, not 6"),
        ('[1,"2","t","e",{}]', "join_ref must be a string or null"),
        ('["1",2,"t","e",{}]', "ref must be a string or null"),
        ('["1","2","","e",{}]', "topic must be a non-empty string"),
        ('["1","2",null,"e",{}]', "topic must be a non-empty string"),
        (json.dumps(["1", "2", "t" * 201, "e", {}]), "topic longer than 200 characters"),
        ('["1","2","t","",{}]', "event must be a non-empty string"),
        (json.dumps(["1", "2", "t", "e" * 101, {}]), "event longer than 100 characters"),
        ('["1","2","t","e",[]]', "payload must be an object"),
        ('["1","2","t","e","x"]', "payload must be an object"),
        ("[" * 100_000, "JSON nested too deep"),
    ],
)
def test_bad_client_frames_raise_protocol_error_4400_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        Codec().decode_client_frame(text, None)
    assert info.value.code == 4400
    assert info.value.reason == reason


def test_a_binary_frame_on_json_and_a_text_frame_on_msgpack_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="binary frame"):
        Codec().decode_client_frame(None, b"[]")
    with pytest.raises(ProtocolError, match="text frame"):
        Codec(MSGPACK_SUBPROTOCOL).decode_client_frame("[]", None)
    with pytest.raises(ProtocolError, match="invalid msgpack"):
        Codec(MSGPACK_SUBPROTOCOL).decode_client_frame(None, b"\xc1")


def test_server_pushes_carry_their_position_as_a_sixth_element() -> None:
    codec = Codec()
    frame = Frame("1", None, "room:a", "said", {"b": 1}, (7, "ep"))
    text = codec.encode(frame)
    assert json.loads(text) == ["1", None, "room:a", "said", {"b": 1}, [7, "ep"]]
    assert codec.decode_server_frame(text if isinstance(text, str) else None, None) == frame
    plain = Frame("1", "3", "room:a", "reply", {"status": "ok", "response": {}})
    assert len(json.loads(codec.encode(plain))) == 5


def test_msgpack_frames_have_the_same_structure() -> None:
    codec = Codec(MSGPACK_SUBPROTOCOL)
    frame = Frame("1", None, "room:é", "said", {"b": b"\x00"}, (3, "e"))
    data = codec.encode(frame)
    assert isinstance(data, bytes)
    assert msgpack.unpackb(data) == ["1", None, "room:é", "said", {"b": b"\x00"}, [3, "e"]]
    assert codec.decode_server_frame(None, data) == frame


@pytest.mark.parametrize(
    "items",
    [[None, None, "t", "e", {}, [1]], [None, None, "t", "e", {}, ["1", "e"]], [None, None]],
)
def test_a_malformed_server_frame_is_refused(items: list[object]) -> None:
    with pytest.raises(ProtocolError):
        Codec().decode_server_frame(json.dumps(items), None)


def test_the_first_offered_subprotocol_of_ours_is_chosen() -> None:
    assert choose_subprotocol([]) == JSON_SUBPROTOCOL
    assert choose_subprotocol(["x", MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL]) == MSGPACK_SUBPROTOCOL
    assert choose_subprotocol([JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL]) == JSON_SUBPROTOCOL
    assert choose_subprotocol(["graphql-ws"]) is None


def test_protocol_events_and_dollar_events_are_reserved() -> None:
    assert all(is_reserved(e) for e in ("reply", "presence_diff", "$x"))
    assert not is_reserved("say")


def test_json_payloads_are_read_as_javascript_reads_them_and_left_alone_otherwise() -> None:
    codec = Codec()
    frame = codec.decode_client_frame(
        '["1","2","t","e",{"\\udfff":[18446744073709551616,"x\\ud83d",-9223372036854775808]}]',
        None,
    )
    assert frame.payload == {"\ufffd": [2.0**64, "x\ufffd", -(2**63)]}
    with pytest.raises(ProtocolError, match="invalid msgpack"):  # a surrogate is not UTF-8
        Codec(MSGPACK_SUBPROTOCOL).decode_client_frame(
            None, msgpack.packb(["1", "2", "t", "e", {"a": 1}])[:-1] + b"\xa3\xed\xa0\x80"
        )
    plain = ["1", "2", "t", "e", {"a": [1, "é"]}]
    assert Codec().decode_client_frame(json.dumps(plain), None).payload == {"a": [1, "é"]}
