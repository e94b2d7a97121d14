"""channelworks.layers.codec: msgpack only, clear refusals, Fernet with rotation."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from channelworks.exceptions import InvalidMessage
from channelworks.layers.codec import Codec, UndecodableMessage, derive_fernet_key


def test_round_trip_of_everything_msgpack_carries() -> None:
    codec = Codec()
    message = {
        "type": "x",
        "none": None,
        "flags": [True, False],
        "n": -(2**63),
        "big": 2**64 - 1,
        "f": 1.5,
        "text": "héllo",
        "raw": b"\x00\xff",
        "nested": {"list": [1, [2, {"three": 3}]], 4: "int keys too"},
    }
    assert codec.decode(codec.encode(message)) == message


def test_tuples_come_back_as_lists() -> None:
    codec = Codec()
    assert codec.decode(codec.encode({"type": "x", "t": (1, 2)})) == {"type": "x", "t": [1, 2]}


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (datetime.datetime(2024, 1, 1), "datetime"),
        (decimal.Decimal("1.5"), "Decimal"),
        (uuid.UUID(int=0), "UUID"),
        ({1, 2}, "set"),
        (object(), "object"),
    ],
)
def test_values_it_cannot_carry_are_refused_naming_their_type(value: object, name: str) -> None:
    with pytest.raises(InvalidMessage, match=rf"type {name}\b"):
        Codec().encode({"type": "x", "nested": [{"value": value}]})


def test_integers_too_large_are_refused() -> None:
    with pytest.raises(InvalidMessage, match=r"integer beyond 64 bits .* send it as a str"):
        Codec().encode({"type": "x", "n": 2**64})
    with pytest.raises(InvalidMessage, match="integer beyond 64 bits"):
        Codec().encode({"type": "x", "n": [-(2**63) - 1]})


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x93\x01\x02\x03", b"\x92\x01"])
def test_what_is_not_a_message_is_undecodable(data: bytes) -> None:
    with pytest.raises(UndecodableMessage):
        Codec().decode(data)


def test_encryption_hides_the_payload_and_round_trips() -> None:
    codec = Codec(["k" * 40])
    token = codec.encode({"type": "x", "secret": "plain words"})
    assert b"plain words" not in token
    assert codec.decode(token) == {"type": "x", "secret": "plain words"}
    assert codec.encrypted


def test_rotation_first_key_encrypts_every_key_decrypts() -> None:
    old, new = "old" * 12, "new" * 12
    before = Codec([old])
    during = Codec([new, old])
    after = Codec([new])
    assert during.decode(before.encode({"type": "old"})) == {"type": "old"}
    assert after.decode(during.encode({"type": "new"})) == {"type": "new"}
    with pytest.raises(UndecodableMessage, match="decrypt"):
        after.decode(before.encode({"type": "old"}))


def test_plain_and_encrypted_do_not_mix_silently() -> None:
    with pytest.raises(UndecodableMessage, match="decrypt"):
        Codec(["k" * 40]).decode(Codec().encode({"type": "x"}))
    with pytest.raises(UndecodableMessage):
        Codec().decode(Codec(["k" * 40]).encode({"type": "x"}))


def test_keys_are_derived_the_same_from_str_and_bytes() -> None:
    assert derive_fernet_key("secret") == derive_fernet_key(b"secret")
    assert derive_fernet_key("secret") != derive_fernet_key("secret2")
    assert len(derive_fernet_key("x")) == 44  # urlsafe base64 of 32 bytes


@pytest.mark.parametrize("keys", [[], "one string", [""], [b""], [3]])
def test_bad_key_lists_are_refused(keys: object) -> None:
    with pytest.raises(ValueError, match="symmetric_encryption_keys"):
        Codec(keys)  # type: ignore[arg-type]


def test_a_sealed_payload_opens_only_for_what_it_was_sealed_to() -> None:
    codec = Codec(["a key with 32 bytes of entropy or more!!"])
    token = codec.seal({"type": "x"}, b"chat.abc!1 1700000000000")
    assert codec.unseal(token, b"chat.abc!1 1700000000000", ttl=60) == {"type": "x"}
    for other in (b"chat.abc!2 1700000000000", b"chat.abc!1 1700000600000"):
        with pytest.raises(UndecodableMessage, match="sealed for another target or expiry"):
            codec.unseal(token, other, ttl=60)
    assert codec.decode(codec.encode({"type": "y"})) == {"type": "y"}  # unchanged, unbound
    plain = Codec()
    assert plain.seal({"type": "x"}, b"anything") == plain.encode({"type": "x"})
    assert plain.unseal(plain.encode({"type": "x"}), b"anything else") == {"type": "x"}


def test_a_refused_message_leaves_nothing_behind_for_the_next() -> None:
    """Each thread keeps one packer: a pack that fails half way must not leave its bytes in
    the buffer the next message is packed into."""
    codec = Codec()
    with pytest.raises(InvalidMessage):
        codec.encode({"type": "m", "ok": "x" * 100, "bad": [1, 2, uuid.uuid4()]})
    with pytest.raises(InvalidMessage):
        codec.encode({"type": "m", "big": 2**70})
    assert codec.decode(codec.encode({"type": "next"})) == {"type": "next"}


def test_threads_encoding_at_once_each_get_their_own_message() -> None:
    import threading

    codec = Codec()
    failures: list[object] = []

    def work(n: int) -> None:
        for i in range(2000):
            message = {"type": "m", "thread": n, "i": i, "text": "x" * (n * 50 + i % 7)}
            if codec.decode(codec.encode(message)) != message:
                failures.append(message)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
