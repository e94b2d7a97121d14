"""The reader of a consumer's channel: no task of its own until a message comes.

Most connections never receive a layer message, or only now and then, but each one listens on
its channel. A task waiting in ``receive`` costs about a kilobyte per connection (the task, its
frames, its entry in the loop's set of tasks). So the reader waits without a task first: it
runs the layer's ``receive`` coroutine by hand up to its wait and is called back when that
wait ends. With the first message it starts the reader task (the consumer's ``_pump`` in its
reader role), which then reads on as before.

Rules of this file:
- the wait by hand is used only with the in-memory layer's own ``receive`` (a plain wait on a
  future, no task needed); any other layer gets its reader task at once;
- stopping the reader throws ``CancelledError`` into a wait by hand, as cancelling a task
  would, so the layer forgets the waiter or gives back a message handed to it meanwhile;
- what the wait raises (``LayerClosed``...) ends the consumer as the reader task's failures do.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.memory import InMemoryChannelLayer

if TYPE_CHECKING:
    from channelworks.consumers.base import AsyncConsumer, _Turn


#: the context the wait by hand is resumed in: the layer's receive sets no context variable
_CONTEXT = contextvars.Context()


class LayerReader:
    """Reads ``name`` on ``layer`` for ``consumer``; ``owner`` is the consumer's task."""

    __slots__ = (
        "consumer",
        "context",
        "layer",
        "name",
        "owner",
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
        self.waiting: Coroutine[Any, Any, Any] | None = None
        if type(layer).receive is InMemoryChannelLayer.receive:
            self._step(layer.receive(name))
        else:
            self._start(None)

    def _step(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run the wait by hand up to its next suspension, or to its message."""
        try:
            awaited = coroutine.send(None)
        except StopIteration as stop:
            self.waiting = None
            self._start(stop.value)
            return
        except BaseException as exc:
            self.waiting = None
            self._failed(exc)
            return
        self.waiting = coroutine
        if awaited is None:  # a bare yield: step again on the loop's next turn
            asyncio.get_running_loop().call_soon(self, None, context=_CONTEXT)
        else:
            awaited._asyncio_future_blocking = False  # as a task does with what it awaits
            # itself as the callback, in a shared empty context: no object per connection
            awaited.add_done_callback(self, context=_CONTEXT)

    def __call__(self, _: object) -> None:
        """The wait by hand can go on (its future is done)."""
        waiting = self.waiting
        if waiting is not None and not self.stopped:
            self._step(waiting)

    def _start(self, first: Any) -> None:
        layer, consumer = self.layer, self.consumer
        # The pump waits with ``source`` only after ``receive_nowait`` found nothing: the
        # in-memory layer then need not look again.
        in_memory = type(layer).receive is InMemoryChannelLayer.receive
        source = layer.receive_next if in_memory else layer.receive  # type: ignore[attr-defined]
        self.task = asyncio.get_running_loop().create_task(
            consumer._pump(source, self.turn, self.owner, layer.receive_nowait, self.name, first),
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
            with contextlib.suppress(BaseException):  # its own cleanup ran; it ends raising
                waiting.throw(asyncio.CancelledError())
            waiting.close()
        task = self.task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["LayerReader"]
