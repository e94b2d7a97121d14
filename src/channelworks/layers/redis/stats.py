"""The counters of the Redis layer: the shared ones plus what only a networked layer meets."""

from __future__ import annotations

from dataclasses import dataclass

from channelworks.layers.base import LayerStats


@dataclass
class RedisLayerStats(LayerStats):
    """``group_full`` and ``expired`` as in every layer, plus the ways Redis can fail us.

    Each counter has a log line at WARNING or ERROR on ``channelworks.layers.redis`` beside it.
    """

    #: operations that raised ``RedisUnavailable`` (nothing was sent, or the outcome is unknown)
    redis_errors: int = 0
    #: entries read from Redis that could not be decrypted or decoded (wrong key, corruption)
    undecodable: int = 0
    #: times a reader lost its connection to Redis and got it back
    reconnects: int = 0
    #: messages taken from Redis for a receiver that was cancelled and that could not be put
    #: back because Redis went away at that moment
    lost: int = 0
    #: sends to a process-local channel whose process is not alive (closed, dead, or not yet
    #: heard of by Redis): dropped, like a message on a channel nobody reads
    dead_process: int = 0
    #: group members skipped by ``group_send`` because their process is not alive (each is
    #: removed from the group then)
    dead_members: int = 0
