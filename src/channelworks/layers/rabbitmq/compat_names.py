"""The names channels_rabbitmq's layer has beside the channel layer contract.

Code written for channels_rabbitmq 4 (and its own test suite) uses these on a layer. Each maps
to what the same idea is in channelworks' design; none adds a second way of moving messages:

- ``_queue_name``: the part of this process's channel names before ``!`` (our ``pid``).
  channels_rabbitmq's tests set it right after making a layer to name its channels ``x!1``;
  it may be set before the layer's first I/O only (``RuntimeError`` after);
- ``carehare_connection`` / ``current_connection``: an awaitable that connects (waiting up to
  ``retry_timeout``, then ``RabbitMQUnavailable``) and gives a ``JobPublisher`` whose
  ``publish(body, routing_key=..., exchange_name="")`` publishes raw bytes on the layer's
  connection with a publisher confirm, as the README's job-queue example does with carehare;
  on the loop the layer's connection runs on only (``RuntimeError`` elsewhere, as there);
- ``ReconnectDelay``: channels_rabbitmq's fixed pause between connection attempts; here the
  first pause (50 ms), after which the layer backs off up to 2 s with jitter (connection.py);
- after ``close()`` the layer stays closed and every call raises ``LayerClosed``, a
  ``StopConsumer`` as channels_rabbitmq raises (``carehare_connection`` too).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from channelworks.exceptions import ChannelFull, LayerClosed
from channelworks.layers.rabbitmq.connection import FIRST_BACKOFF, NACKED, RETURNED

if TYPE_CHECKING:
    from channelworks.layers.rabbitmq.connection import Link
    from channelworks.layers.rabbitmq.names import Names
    from channelworks.layers.rabbitmq.reader import ProcessReader

#: channels_rabbitmq's pause between connection attempts: here the first pause, after which
#: the layer backs off (doubling, with jitter) up to 2 s (connection.py)
ReconnectDelay = FIRST_BACKOFF


class JobPublisher:
    """Publishes raw bodies on a layer's connection (channels_rabbitmq's "job queues")."""

    def __init__(self, link: Link) -> None:
        self._link = link

    async def publish(
        self, body: bytes, *, routing_key: str, exchange_name: str = "", mandatory: bool = False
    ) -> None:
        """Publish ``body`` and wait for the broker's confirm.

        Raises ``ChannelFull`` if the broker refused it (a queue with ``reject-publish`` at its
        length limit), ``LookupError`` if ``mandatory`` and no queue took it, and
        ``RabbitMQUnavailable`` if no connection came within the layer's ``retry_timeout``.
        """
        outcome = await self._link.publish_now(
            body,
            exchange_name,
            routing_key,
            mandatory=mandatory,
            operation="publish",
            target=routing_key,
        )
        if outcome == NACKED:
            raise ChannelFull(routing_key)
        if outcome == RETURNED:
            raise LookupError(f"RabbitMQ has no queue for routing key {routing_key!r}")


def _retrieve(task: asyncio.Future[JobPublisher]) -> None:
    if not task.cancelled():
        task.exception()


class ChannelsRabbitmqNames:
    """Mixed into ``RabbitMQChannelLayer``; see the module docstring."""

    pid: str
    queue: str
    names: Names
    reader: ProcessReader
    _link: Link | None
    _marker: str
    _bare: str
    _closed: bool

    @property
    def _queue_name(self) -> str:
        return self.pid

    @_queue_name.setter
    def _queue_name(self, value: str) -> None:
        if self._link is not None:
            raise RuntimeError("_queue_name can only be set before the layer's first use")
        if not value or any(c in value for c in ".! ") or not value.isascii():
            raise ValueError(f"_queue_name must be ASCII without '.', '!' or ' ', got {value!r}")
        self.pid = self.reader.pid = value
        self.queue = self.names.process(value)
        self._marker = f".{value}!"
        self._bare = f"{value}!"

    @property
    def carehare_connection(self) -> asyncio.Future[JobPublisher]:
        task = asyncio.ensure_future(self._job_publisher())
        # Code may only start the connection with it (channels_rabbitmq's tests do): its
        # failure is logged by the layer, so it is not reported again as never retrieved.
        task.add_done_callback(_retrieve)
        return task

    @property
    def current_connection(self) -> asyncio.Future[JobPublisher]:
        return self.carehare_connection

    async def _job_publisher(self) -> JobPublisher:
        if self._closed:
            raise LayerClosed("RabbitMQ", "connect")
        if self._elsewhere() is not None:
            # The publisher's futures belong to the home loop: it cannot be used from here.
            raise RuntimeError(
                "carehare_connection was awaited on another event loop than the one this "
                "layer's connection runs on; use it from that loop"
            )
        return JobPublisher(await self._ready("connect", "RabbitMQ"))

    # the layer's own (layer.py)
    def _elsewhere(self) -> asyncio.AbstractEventLoop | None:
        raise NotImplementedError

    async def _ready(self, operation: str, target: str) -> Link:
        raise NotImplementedError


__all__ = ["ChannelsRabbitmqNames", "JobPublisher", "ReconnectDelay"]
