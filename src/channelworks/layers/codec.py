"""Messages to bytes and back for the layers that cross processes (Redis, RabbitMQ).

Rules of this file:
- the wire format is msgpack, never pickle: a message is data (``None``, ``bool``, ``int``,
  ``float``, ``str``, ``bytes``, lists and dicts of them), and decoding never runs code;
- a value msgpack cannot carry is refused at ``encode`` with ``InvalidMessage`` naming its
  type (an integer beyond 64 bits is named as such), so the sender learns it, not a reader
  in another process;
- with ``symmetric_encryption_keys`` every payload is a Fernet token (AES-128-CBC plus
  HMAC-SHA256, from ``cryptography``): the first key encrypts, every key decrypts, so keys
  rotate without downtime (add the new key first, drop the old one after ``expiry``);
- a key is any ``str`` or ``bytes`` and is turned into a Fernet key with HKDF-SHA256
  (``derive_fernet_key``), so a Django ``SECRET_KEY`` works as it is; give it at least 32
  bytes of entropy, since a guessable key is a guessable encryption;
- ``seal``/``unseal`` also authenticate what the entry around the payload says (target,
  expiry) and refuse tokens older than a ttl, when encrypting; ``encode``/``decode`` do not;
- a payload that does not decode (corrupt, or encrypted with a key this process lacks)
  raises ``UndecodableMessage``; the caller counts and logs it, it is never skipped in
  silence.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from channelworks.exceptions import ChannelLayerError, InvalidMessage

#: HKDF ``info``: binds derived keys to this use, so the same secret used elsewhere (Django
#: signing) never yields the same key material.
KDF_INFO = b"channelworks.layers.codec fernet v1"


#: bytes past which a message's packer is dropped after packing it (its buffer grew that big
#: and would stay so for the thread's life)
PACKER_KEEPS = 64 * 1024


class UndecodableMessage(ChannelLayerError):
    """A payload that is not a msgpack message, or was encrypted with an unknown key."""


def derive_fernet_key(secret: str | bytes) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) derived from ``secret`` by HKDF-SHA256."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("symmetric_encryption_keys must be non-empty str or bytes values")
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KDF_INFO).derive(secret)
    return base64.urlsafe_b64encode(material)


def _refuse(value: object) -> Any:
    if isinstance(value, int):  # msgpack calls ``default`` for an int it cannot carry too
        raise _integer_too_big(value)
    raise InvalidMessage(
        f"A message value of type {type(value).__name__} cannot be sent across processes; "
        "use None, bool, int, float, str, bytes, and lists or dicts of them"
    )


def _integer_too_big(value: int) -> InvalidMessage:
    return InvalidMessage(
        f"An integer beyond 64 bits ({value.bit_length()} bits without its sign) cannot be "
        "sent across processes: msgpack carries integers from -2**63 to 2**64 - 1; send it "
        "as a str"
    )


def _count_as_nil(value: object) -> Any:
    """``default`` of ``encoded_size``: an int too big is refused as ``encode`` refuses it;
    any other foreign value is measured as one byte (only the in-memory layer measures
    messages that hold them; the cross-process layers refuse them)."""
    if isinstance(value, int):
        raise _integer_too_big(value)
    return None


_sizers = threading.local()


def encoded_size(message: dict[str, Any]) -> int:
    """The bytes ``message`` takes in msgpack, as ``Codec.encode`` packs it unencrypted.

    For a layer that keeps messages as they are (in memory) and still refuses, as the
    cross-process layers do, what is over ``max_message_size`` or holds an integer beyond
    64 bits (``InvalidMessage``). Costs one pack (a quarter of a microsecond for a small
    message), never a copy kept.
    """
    packer = getattr(_sizers, "packer", None)
    if packer is None:
        packer = _sizers.packer = msgpack.Packer(
            use_bin_type=True, default=_count_as_nil, buf_size=4096
        )
    try:
        size = len(packer.pack(message))
    except InvalidMessage:
        _sizers.packer = None
        raise
    except (TypeError, ValueError, OverflowError) as exc:  # nested too deep, and the like
        _sizers.packer = None
        raise InvalidMessage(f"A message cannot be measured: {exc}") from exc
    if size > PACKER_KEEPS:  # a big message grew its buffer: let it go
        _sizers.packer = None
    return size


class Codec:
    """Encodes messages to bytes (msgpack, optionally encrypted) and decodes them back.

    ``symmetric_encryption_keys``: ``None`` for plain msgpack, or a non-empty list of secrets;
    the first encrypts, all decrypt. Encryption needs the ``cryptography`` package
    (``pip install channelworks[encryption]``).
    """

    def __init__(self, symmetric_encryption_keys: Iterable[str | bytes] | None = None) -> None:
        self._packer_options: dict[str, Any] = {"use_bin_type": True, "default": _refuse}
        #: a Packer per thread (one is several times cheaper than ``msgpack.packb``, which
        #: makes a new one per call; one thread's pack must not share another's buffer)
        self._local = threading.local()
        self._fernet: Any = None
        if symmetric_encryption_keys is not None:
            if isinstance(symmetric_encryption_keys, str | bytes):
                raise ValueError("symmetric_encryption_keys must be a list of keys, not one key")
            keys = list(symmetric_encryption_keys)
            if not keys:
                raise ValueError("symmetric_encryption_keys must hold at least one key")
            try:
                from cryptography.fernet import Fernet, MultiFernet
            except ImportError as exc:  # pragma: no cover - cryptography is a dev dependency
                raise ImportError(
                    "symmetric_encryption_keys needs the 'cryptography' package "
                    "(pip install channelworks[encryption])"
                ) from exc
            self._fernet = MultiFernet([Fernet(derive_fernet_key(key)) for key in keys])

    @property
    def encrypted(self) -> bool:
        return self._fernet is not None

    def encode(self, message: dict[str, Any]) -> bytes:
        """Bytes for ``message``; raise ``InvalidMessage`` naming a value msgpack cannot carry."""
        data = self._pack(message)
        if self._fernet is not None:
            data = self._fernet.encrypt(data)
        return data

    def decode(self, data: bytes) -> dict[str, Any]:
        """The message in ``data``; raise ``UndecodableMessage`` if it is not one of ours."""
        if self._fernet is not None:
            data = self._decrypt(data, None)
        return self._unpack(data)

    def seal(self, message: dict[str, Any], bound_to: bytes) -> bytes:
        """Like ``encode``, and with encryption the token also authenticates ``bound_to``.

        ``bound_to`` is what the entry around the payload says and a reader relies on (its
        target and expiry): ``unseal`` refuses the payload under any other, so whoever can
        write to the broker without the key cannot re-address or prolong a captured message.
        Without encryption it is ``encode`` (there is no key to authenticate with).
        """
        data = self._pack(message)
        if self._fernet is not None:
            if len(bound_to) > 0xFFFF:
                raise InvalidMessage("a message's target is too long to bind to its payload")
            data = self._fernet.encrypt(len(bound_to).to_bytes(2, "big") + bound_to + data)
        return data

    def unseal(self, data: bytes, bound_to: bytes, ttl: int | None = None) -> dict[str, Any]:
        """The message ``seal`` put in ``data`` for ``bound_to``; with encryption, a token
        older than ``ttl`` seconds or sealed for anything else raises ``UndecodableMessage``.
        """
        if self._fernet is None:
            return self._unpack(data)
        data = self._decrypt(data, ttl)
        size = int.from_bytes(data[:2], "big")
        if data[2 : 2 + size] != bound_to:
            raise UndecodableMessage(
                "A message's payload was sealed for another target or expiry than its entry "
                "says: it was re-addressed, prolonged or replayed by someone without the key"
            )
        return self._unpack(data[2 + size :])

    def _pack(self, message: dict[str, Any]) -> bytes:
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = self._local.packer = msgpack.Packer(**self._packer_options, buf_size=4096)
        try:
            data: bytes = packer.pack(message)
        except InvalidMessage:
            self._local.packer = None  # its buffer may have grown: let it go
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            # Integers over 64 bits, recursion too deep, and the like.
            self._local.packer = None
            raise InvalidMessage(f"A message cannot be sent across processes: {exc}") from exc
        if len(data) > PACKER_KEEPS:  # a big message grew its buffer: let it go
            self._local.packer = None
        return data

    def _decrypt(self, data: bytes, ttl: int | None) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            plain: bytes = self._fernet.decrypt(data, ttl=ttl)
        except InvalidToken:
            raise UndecodableMessage(
                "Cannot decrypt a message: it was encrypted with a key that is not in "
                "symmetric_encryption_keys, it is not encrypted"
                + ("" if ttl is None else f", or it is older than {ttl} s")
            ) from None
        return plain

    def _unpack(self, data: bytes) -> dict[str, Any]:
        try:
            message = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except TypeError:
            # An array as a map key (a tuple key where the message was made): a list cannot
            # be one. Rare, so it costs a second decoding here, not a check of every send.
            message = _unpack_array_keys(data)
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise UndecodableMessage(f"Cannot decode a message: {exc!r}") from exc
        if not isinstance(message, dict):
            raise UndecodableMessage(f"A payload decoded to {type(message).__name__}, not dict")
        return message


def _unpack_array_keys(data: bytes) -> Any:
    """``data`` decoded with its arrays as tuples where they are map keys, as lists elsewhere
    (as ``encode`` got them: tuple keys, list or tuple values)."""
    try:
        return _lists(msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=False))
    except Exception as exc:  # a map as a key, or no msgpack at all
        raise UndecodableMessage(f"Cannot decode a message: {exc!r}") from exc


def _lists(value: Any) -> Any:
    """``value`` with every tuple that is not (inside) a map key made a list again."""
    if isinstance(value, tuple):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return value


__all__ = ["KDF_INFO", "Codec", "UndecodableMessage", "derive_fernet_key", "encoded_size"]
