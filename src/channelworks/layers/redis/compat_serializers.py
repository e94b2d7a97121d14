"""channels_redis' serializer registry (``channels_redis.serializers`` under compat).

channelworks' layers encode with ``channelworks.layers.codec`` (msgpack, never pickle); this
module is for code written against channels_redis that builds, registers or calls its
serializers directly. What a serializer does, in order:

- ``serialize``: ``as_bytes`` (msgpack or JSON), then Fernet-encrypt when keys were given
  (keys are derived as the layers derive them: ``derive_fernet_key``), then prepend
  ``random_prefix_length`` random bytes (channels_redis uses them so that equal messages are
  distinct members of a sorted set);
- ``deserialize``: the exact reverse; a token older than ``expiry + 10`` seconds is refused.

Rules: a serializer class must have callable ``serialize`` and ``deserialize``; registering
anything else raises ``InvalidSerializer``, an ``AssertionError`` as in channels_redis.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from channelworks.exceptions import ChannelLayerError
from channelworks.layers.codec import derive_fernet_key


class SerializerDoesNotExist(ChannelLayerError, KeyError):
    """No serializer is registered under the requested format name."""


class InvalidSerializer(ChannelLayerError, AssertionError):
    """A class registered as a serializer lacks callable ``serialize``/``deserialize``."""


class BaseMessageSerializer(ABC):
    """Bytes from a message and back; subclasses give ``as_bytes`` and ``from_bytes``."""

    def __init__(
        self,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.crypter: Any = None
        if symmetric_encryption_keys:
            from cryptography.fernet import Fernet, MultiFernet

            keys = [Fernet(derive_fernet_key(key)) for key in symmetric_encryption_keys]
            self.crypter = MultiFernet(keys)

    @abstractmethod
    def as_bytes(self, message: Any) -> bytes: ...

    @abstractmethod
    def from_bytes(self, data: bytes) -> Any: ...

    def serialize(self, message: Any) -> bytes:
        data = self.as_bytes(message)
        if self.crypter is not None:
            data = self.crypter.encrypt(data)
        if self.random_prefix_length > 0:
            data = os.urandom(self.random_prefix_length) + data
        return data

    def deserialize(self, data: bytes) -> Any:
        if self.random_prefix_length > 0:
            data = data[self.random_prefix_length :]
        if self.crypter is not None:
            ttl = None if self.expiry is None else int(self.expiry) + 10
            data = self.crypter.decrypt(data, ttl)
        return self.from_bytes(data)


class MsgPackSerializer(BaseMessageSerializer):
    """msgpack with ``bin`` for bytes: the format of channels_redis and of our layers."""

    def as_bytes(self, message: Any) -> bytes:
        packed: bytes = msgpack.packb(message, use_bin_type=True)
        return packed

    def from_bytes(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False)


class JSONSerializer(BaseMessageSerializer):
    """UTF-8 JSON; bytes values cannot be carried."""

    def as_bytes(self, message: Any) -> bytes:
        return json.dumps(message).encode()

    def from_bytes(self, data: bytes) -> Any:
        return json.loads(data)


class SerializersRegistry:
    """Serializer classes by format name; ``get_serializer`` builds one."""

    def __init__(self) -> None:
        self._registry: dict[str, type[Any]] = {}

    def register_serializer(self, format: str, serializer_class: type[Any]) -> None:
        """Register ``serializer_class`` (callable ``serialize`` and ``deserialize``)."""
        for method in ("serialize", "deserialize"):
            if not callable(getattr(serializer_class, method, None)):
                raise InvalidSerializer(
                    f"{serializer_class!r} cannot be the {format!r} serializer: "
                    f"it has no callable {method!r}"
                )
        self._registry[format] = serializer_class

    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> Any:
        """A new serializer of ``format``; ``SerializerDoesNotExist`` if none is registered."""
        try:
            serializer_class = self._registry[format]
        except KeyError:
            raise SerializerDoesNotExist(format) from None
        return serializer_class(*args, **kwargs)


registry = SerializersRegistry()
registry.register_serializer("msgpack", MsgPackSerializer)
registry.register_serializer("json", JSONSerializer)

__all__ = [
    "BaseMessageSerializer",
    "InvalidSerializer",
    "JSONSerializer",
    "MsgPackSerializer",
    "SerializerDoesNotExist",
    "SerializersRegistry",
    "registry",
]
