"""The codec of the layers that cross processes, with what another process (or someone who
can write to the broker) might hand it: corrupt, truncated, foreign or wrongly keyed bytes."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channelworks.exceptions import InvalidMessage
from channelworks.layers.codec import Codec, UndecodableMessage
from tests.fuzz.strategies import (
    corrupted,
    foreign_values,
    fuzz_settings,
    same_value,
    wire_messages,
    wire_values,
)

KEY = "a key of at least thirty-two bytes, for the fuzz tests"
OTHER_KEY = "another key, just as long, that the reader does not have"
PLAIN = Codec()
SEALED = Codec([KEY])


def decodes_or_refuses(codec: Codec, data: bytes) -> dict[Any, Any] | None:
    """The message in ``data``, or None if the codec refused it with UndecodableMessage
    (anything else it raises fails the test)."""
    try:
        message = codec.decode(data)
    except UndecodableMessage:
        return None
    assert isinstance(message, dict)
    return message


@fuzz_settings(max_examples=500)
@given(message=wire_messages())
def test_every_wire_message_round_trips(message: dict[Any, Any]) -> None:
    """A message of msgpack's types (tuple keys included) decodes equal to what was encoded,
    plain and encrypted (tuples that are values come back as lists)."""
    for codec in (PLAIN, SEALED):
        assert same_value(codec.decode(codec.encode(message)), message)
        bound = b"channel\x00123"
        assert same_value(codec.unseal(codec.seal(message, bound), bound), message)


@fuzz_settings(max_examples=200)
@given(value=foreign_values(), where=st.sampled_from(["value", "nested", "key"]))
def test_what_msgpack_cannot_carry_is_refused_at_encode(value: Any, where: str) -> None:
    """A value msgpack cannot carry raises InvalidMessage when encoded, never at a reader;
    a tuple is carried (as a list, or as a tuple where it is a key)."""
    if where == "key":
        try:
            hash(value)
        except TypeError:
            return
        message: dict[Any, Any] = {"type": "x", value: 1}
    elif where == "nested":
        message = {"type": "x", "deep": [{"k": [value]}]}
    else:
        message = {"type": "x", "v": value}
    try:
        data = PLAIN.encode(message)
    except InvalidMessage:
        return
    assert same_value(PLAIN.decode(data), message), (message, PLAIN.decode(data))


@fuzz_settings(max_examples=50)
@given(depth=st.integers(min_value=400, max_value=3000))
def test_nesting_past_msgpacks_limit_is_refused_at_encode(depth: int) -> None:
    """A message nested deeper than msgpack packs raises InvalidMessage, or round trips."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    message = {"type": "deep", "v": value}
    try:
        data = PLAIN.encode(message)
    except InvalidMessage:
        return
    assert decodes_or_refuses(PLAIN, data) == message


@fuzz_settings(max_examples=500)
@given(data=st.data(), message=wire_messages())
def test_corrupted_payloads_decode_or_are_refused_clearly(
    data: st.DataObject, message: dict[Any, Any]
) -> None:
    """A payload truncated, flipped or replaced either decodes to a dict or raises
    UndecodableMessage; a changed encrypted one decodes to nothing but the original."""
    plain = data.draw(corrupted(PLAIN.encode(message)))
    decodes_or_refuses(PLAIN, plain)
    # base64 decoding skips bytes outside its alphabet, so a token with such bytes added is
    # still the same token: it may decode, only ever to what was sealed.
    changed = data.draw(corrupted(SEALED.encode(message)))
    decoded = decodes_or_refuses(SEALED, changed)
    assert decoded is None or same_value(decoded, message)


@fuzz_settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_are_refused_clearly(data: bytes) -> None:
    """Any bytes at all: a dict, or UndecodableMessage; encrypted, always UndecodableMessage
    unless they are a token made with one of the reader's keys."""
    decodes_or_refuses(PLAIN, data)
    assert decodes_or_refuses(SEALED, data) is None


@fuzz_settings(max_examples=100)
@given(message=wire_messages(), bound=st.binary(max_size=40), other=st.binary(max_size=40))
def test_wrong_keys_and_wrong_bindings_are_refused(
    message: dict[Any, Any], bound: bytes, other: bytes
) -> None:
    """A token sealed with a key the reader lacks, or for another target, or read as plain
    msgpack, raises UndecodableMessage; a plain payload read by an encrypting codec too."""
    stranger = Codec([OTHER_KEY])
    token = stranger.seal(message, bound)
    with pytest.raises(UndecodableMessage):
        SEALED.unseal(token, bound)
    if other != bound:
        with pytest.raises(UndecodableMessage):
            stranger.unseal(token, other)
    decodes_or_refuses(PLAIN, token)  # a Fernet token is not msgpack; at most a str
    with pytest.raises(UndecodableMessage):
        SEALED.decode(PLAIN.encode(message))


@fuzz_settings(max_examples=100)
@given(value=wire_values())
def test_payloads_that_are_not_maps_are_refused(value: Any) -> None:
    """msgpack that is not a map is not a message: UndecodableMessage."""
    if isinstance(value, dict):
        return
    with pytest.raises(UndecodableMessage, match="not dict"):
        PLAIN.decode(msgpack.packb(value, use_bin_type=True))


def test_a_tuple_key_reaches_the_reader_as_a_tuple() -> None:
    """Found by the round-trip property: a tuple key encoded, and every reader then refused
    the message as undecodable (a list cannot be a key), far from its sender."""
    message: dict[Any, Any] = {"type": "x", (1, "a"): [(2, 3)], "v": {(None,): b"k"}}
    for codec in (PLAIN, SEALED):
        assert codec.decode(codec.encode(message)) == {
            "type": "x",
            (1, "a"): [[2, 3]],
            "v": {(None,): b"k"},
        }
