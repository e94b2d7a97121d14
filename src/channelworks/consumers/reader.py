"""The reader of a consumer's channel: no task of its own until a message comes.

Most connections never receive a layer message, or only now and then, but each one listens on
its channel. A task waiting in ``receive`` costs about a kilobyte per connection (the task, its
frames, its entry in the loop's set of tasks). So the reader waits without a task first, and
without a coroutine either: it takes the in-memory layer's future for the next message
(``receive_later``) and is called back when that future is done. With the first message it
starts the reader task (the consumer's ``_pump`` in its reader role), which then reads on as
before.

Rules of this file:
- the wait by hand is used only with the in-memory layer's own ``receive`` (a plain wait on a
  future, no task needed); any other layer gets its reader task at once;
- stopping the reader hands the future back to the layer (``cancel_wait``), as cancelling a
  ``receive`` would, so the layer forgets the waiter or gives back a message handed to it
  meanwhile;
- a message the wait by hand got is the reader's until its task takes it: a reader stopped
  before its task ran gives it back to the layer (never dropped unseen). So are the messages
  the task took for a batch and had not handled yet (``pending``, batches.py), and the one it
  held while it waited for the consumer's turn (``_pump`` puts it in ``pending``);
- what the wait ends with (``LayerClosed``...) ends the consumer as the reader task's failures
  do.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.memory import InMemoryChannelLayer

if TYPE_CHECKING:
    from channelworks.consumers.base import AsyncConsumer, _Turn


logger = logging.getLogger("channelworks.consumers")

#: the context the wait by hand is resumed in: the layer's receive sets no context variable
_CONTEXT = contextvars.Context()


def _nothing(channel: str) -> None:
    """The poll of a layer that has no ``receive_nowait``: it knows of no waiting message."""


class LayerReader:
    """Reads ``name`` on ``layer`` for ``consumer``; ``owner`` is the consumer's task."""

    __slots__ = (
        "consumer",
        "context",
        "first",
        "layer",
        "name",
        "owner",
        "pending",
        "stopped",
        "task",
        "turn",
        "waiting",
    )

    def __init__(
        self,
        consumer: AsyncConsumer,
        layer: BaseChannelLayer,
        name: str,
        turn: _Turn,
        owner: asyncio.Task[Any] | None,
    ) -> None:
        self.consumer = consumer
        self.layer = layer
        self.name = name
        self.turn = turn
        self.owner = owner
        self.stopped = False
        # the consumer's context, for the reader task (the wait by hand resumes in another)
        self.context = contextvars.copy_context()
        self.task: asyncio.Task[None] | None = None
        self.waiting: asyncio.Future[Any] | None = None
        #: the message the wait by hand got, until the reader task takes it (``_pump``)
        self.first: Any = None
        #: messages the reader task took from the channel and has not handled yet (made by
        #: the first batch: an empty deque costs 760 bytes, and most readers never batch)
        self.pending: deque[Any] | None = None
        if isinstance(layer, InMemoryChannelLayer) and (
            type(layer).receive is InMemoryChannelLayer.receive
        ):
            first = layer.receive_later(name)
            if isinstance(first, asyncio.Future):
                self.waiting = first
                # itself as the callback, in a shared empty context: no object per connection
                first.add_done_callback(self, context=_CONTEXT)
            else:
                self._start(first)
        else:
            self._start(None)

    def __call__(self, future: asyncio.Future[Any]) -> None:
        """The wait by hand ended (its future is done): the reader task starts with it."""
        if self.waiting is not future or self.stopped:
            return
        self.waiting = None
        if future.cancelled():
            self._failed(asyncio.CancelledError())
            return
        error = future.exception()
        if error is not None:
            self._failed(error)
            return
        self._start(future.result())

    def _start(self, first: Any) -> None:
        layer, consumer = self.layer, self.consumer
        # The pump waits with ``source`` only after ``poll`` found nothing: the in-memory
        # layer then need not look again (the layer's ``reader_calls``).
        loop = asyncio.get_running_loop()
        calls = getattr(layer, "reader_calls", None)
        if calls is not None:
            poll, source = calls(self.name, loop)
        else:  # a layer of its own that does not subclass BaseChannelLayer (Channels' API)
            poll, source = getattr(layer, "receive_nowait", _nothing), layer.receive
        # The first message stays here until the task takes it: a task cancelled before its
        # first step (the consumer ending at once) would drop it, and ``stop`` gives it back.
        self.first = first
        self.task = loop.create_task(
            consumer._pump(
                source,
                self.turn,
                self.owner,
                poll,
                self.name,
                self,
            ),
            context=self.context,
        )

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError) or self.stopped:
            return
        self.consumer._reader_failure = exc
        if self.owner is not None:
            self.owner.cancel()

    async def stop(self) -> None:
        """End the reading: the wait by hand is cancelled, the reader task too."""
        self.stopped = True
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.remove_done_callback(self)
            layer = cast(InMemoryChannelLayer, self.layer)  # only its waits are by hand
            layer.cancel_wait(self.name, waiting)  # a message handed to it goes back
        task = self.task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        first, self.first = self.first, None
        if first is not None:  # handed to the wait by hand; the task never ran to take it
            cast(InMemoryChannelLayer, self.layer).give_back(self.name, first)
        if self.pending:  # taken for a batch, not handled: first in line again
            # the Redis and RabbitMQ layers keep their process's channels in an in-memory one
            home = getattr(self.layer, "local", self.layer)
            while self.pending:
                message = self.pending.pop()
                if isinstance(home, InMemoryChannelLayer):
                    home.give_back(self.name, message)
                else:
                    logger.error(
                        "Dropped a channel layer message %s taken for %s, which ended",
                        message.get("type"),
                        self.name,
                    )


__all__ = ["LayerReader"]
