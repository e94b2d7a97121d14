"""The names channels_redis' layers have beside the channel layer contract.

Code written for channels_redis (and its own test suite) calls these on a layer. Each maps to
what the same idea is in channelworks' design; none adds state of its own:

- ``client_prefix``: the part of this process's channel names before ``!`` (our ``pid``);
- ``serialize``/``deserialize``: the layer's codec (msgpack, encrypted if so configured);
- ``_group_key(group)``: the Redis key of a group (ours carries a Cluster hash tag, so it is
  ``b"asgi:group:{name}"`` where channels_redis has ``b"asgi:group:name"``);
- ``_layers``/``_shards``: the per-loop connections and the server connections of the home
  loop (channels_redis' pub/sub layer keeps a per-loop layer and one client per shard).
"""

from __future__ import annotations

from typing import Any

from channelworks.layers.codec import Codec
from channelworks.layers.redis.connections import Home, Links
from channelworks.layers.redis.keys import Keyspace
from channelworks.layers.redis.shard import Shard


class ChannelsRedisNames:
    """Mixed into ``RedisChannelLayer``; see the module docstring."""

    pid: str
    keys: Keyspace
    codec: Codec
    _links: Links

    @property
    def client_prefix(self) -> str:
        return self.pid

    def serialize(self, message: dict[str, Any]) -> bytes:
        return self.codec.encode(message)

    def deserialize(self, data: bytes) -> dict[str, Any]:
        return self.codec.decode(data)

    def _group_key(self, group: str) -> bytes:
        return self.keys.group(group).encode()

    @property
    def _layers(self) -> dict[Any, Home]:
        home = self._links.home
        return {} if home is None else {home.loop: home}

    @property
    def _shards(self) -> list[Shard]:
        home = self._links.home
        return [] if home is None else [pipeline.shard for pipeline in home.pipelines]


__all__ = ["ChannelsRedisNames"]
