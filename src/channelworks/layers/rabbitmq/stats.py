"""The counters of the RabbitMQ layer: the shared ones plus what only a networked layer meets."""

from __future__ import annotations

from dataclasses import dataclass

from channelworks.layers.base import LayerStats


@dataclass
class RabbitMQLayerStats(LayerStats):
    """``group_full`` and ``expired`` as in every layer, plus the ways RabbitMQ can fail us.

    Each counter has a log line at WARNING or ERROR on ``channelworks.layers.rabbitmq`` beside
    it. Messages that expire *inside* RabbitMQ (queue TTL) are dropped by the broker and not
    counted here; RabbitMQ's own queue statistics count them.
    """

    #: operations that raised ``RabbitMQUnavailable``
    unavailable: int = 0
    #: messages received that could not be decrypted or decoded (wrong key, corruption)
    undecodable: int = 0
    #: times the connection was lost and made again
    reconnects: int = 0
    #: publishes RabbitMQ returned as unroutable: a send to a process whose queue is gone
    #: (the process closed or died), dropped like a message on a channel nobody reads
    undeliverable: int = 0
    #: messages for a process-local channel that found its buffer and its overflow full
    #: (twice ``capacity``) in the receiving process, and were dropped there
    overflowed: int = 0
    #: group messages whose confirm never came because RabbitMQ stayed unreachable for
    #: ``retry_timeout`` (``group_send`` does not wait for its confirm; see docs/rabbitmq.md)
    lost: int = 0
    #: publishes sent again on a new connection because the old one broke before the confirm
    #: (the first copy may have arrived too: at-least-once)
    republished: int = 0
    #: times this process found its queue gone (deleted, a broker restarted without it, or
    #: unread past ``process_timeout``): what was sent to it meanwhile is lost, in a number
    #: nobody knows; logged at ERROR
    queue_lost: int = 0
