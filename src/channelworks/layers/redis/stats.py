"""The counters of the Redis layer: the shared ones plus what only a networked layer meets."""

from __future__ import annotations

from dataclasses import dataclass

from channelworks.layers.base import LayerStats


@dataclass
class RedisLayerStats(LayerStats):
    """The counters of every layer (``group_full``, ``expired``, ``undecodable``,
    ``reconnects``, ``lost``), plus the ways only Redis can fail us.

    Each counter has a log line at WARNING or ERROR on ``channelworks.layers.redis`` beside it.
    Here ``lost`` counts messages a cancelled receive had taken and could not put back
    because Redis went away at that moment.
    """

    #: operations that raised ``RedisUnavailable`` (nothing was sent, or the outcome is unknown)
    redis_errors: int = 0
    #: sends to a process-local channel whose process is not alive (closed, dead, or not yet
    #: heard of by Redis): dropped, like a message on a channel nobody reads
    dead_process: int = 0
    #: group entries (``@pid``, channels) skipped by ``group_send`` because their process is
    #: not alive (each is removed from the group then)
    dead_members: int = 0
    #: times this process found that Redis had lost its data (a restart without persistence,
    #: a failover to a replica without it, a flush by hand: a new epoch, scripts.py); each
    #: time it restored its liveness and memberships and held its group sends until every
    #: live process could do the same (the restore window)
    redis_restarts: int = 0
    #: SEND_LOCAL script calls: each carries the sends to one other process's (or this
    #: process's own inbox's) channels made in one event-loop iteration
    send_batches: int = 0
