"""Run the ``channel`` branch of an application for named channels: what ``runworker`` does.

Rules of this file:
- each channel name gets one application instance at a time, with the scope
  ``{"type": "channel", "channel": name}``. It is made when a message for that channel
  arrives and none is running, so an instance that ended (by an error, or by returning) is
  replaced by a fresh one for the next message; its attributes do not carry over;
- a message is *in hand* from the moment the worker takes it off the layer until the instance
  asks for the next one (calls ``receive`` again) or ends. Only then does the worker take the
  next message for that channel: one channel's messages are handled one at a time, in order,
  and a backlog stays in the layer, where other worker processes reading the same channel can
  take it (the layer shares a normal channel's messages among its readers);
- a channel's task waits with no message in hand only in ``_next_message`` (the layer's
  ``receive``, or the pause after a failed ``receive``). Cancelling it there loses nothing
  (the layer contract), which is how ``stop()`` stops receiving without waiting;
- an error is logged with the channel name and the message type, never raised out of the
  worker: one bad message does not stop the messages after it, nor the other channels.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Collection, Iterable
from types import FrameType
from typing import Any

from channelworks.exceptions import ChannelworksError, InvalidChannelName
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.names import is_process_local, require_channel_name
from channelworks.routing import ChannelNameRouter, ProtocolTypeRouter
from channelworks.types import AnyASGIApp, Message

logger = logging.getLogger("channelworks.worker")

#: the signals ``serve`` turns into ``Worker.stop()``
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


def require_worker_channel(name: object) -> str:
    """Return ``name`` if a worker may read it, else raise ``InvalidChannelName``.

    A worker reads normal channels (``thumbnail-generate``). A process-local name (with
    ``!``) belongs to the process that made it with ``new_channel()``.
    """
    channel = require_channel_name(name)
    if is_process_local(channel):
        raise InvalidChannelName(
            "channel",
            channel,
            "a worker reads normal channels; a name with '!' is process-local and belongs to "
            "the process that made it",
        )
    return channel


def unrouted_channels(application: object, channels: Iterable[str]) -> list[str]:
    """The names in ``channels`` that ``application`` visibly cannot route.

    Looks through a ``ProtocolTypeRouter`` to its ``channel`` entry and into a
    ``ChannelNameRouter``; an application wrapped in anything else is trusted (``[]``).
    """
    names = list(channels)
    if isinstance(application, ProtocolTypeRouter):
        branch = application.application_mapping.get("channel")
        if branch is None:
            return names
        application = branch
    if isinstance(application, ChannelNameRouter):
        known = set(application.channel_names)
        return [name for name in names if name not in known]
    return []


async def _refuse_send(message: Message) -> None:
    raise ChannelworksError(
        f"A worker's application has no client to send {message.get('type')!r} to; send to a "
        "channel or a group through the channel layer instead"
    )


class _Instance:
    """One application instance for one channel, given one message at a time."""

    def __init__(self, application: AnyASGIApp, channel: str) -> None:
        self.channel = channel
        self.in_hand: Message | None = None
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._asked: asyncio.Future[None] | None = None
        self.task = asyncio.create_task(self._run(application))

    async def _run(self, application: AnyASGIApp) -> None:
        scope = {"type": "channel", "channel": self.channel}
        try:
            await application(scope, self._receive, _refuse_send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.error(
                "Application for channel %r failed on a message of type %r; a new instance "
                "handles the next message",
                self.channel,
                None if self.in_hand is None else self.in_hand.get("type"),
                exc_info=exc,
            )
        else:
            # Only a message given but never taken is lost this way: say so.
            while not self._inbox.empty():
                lost = self._inbox.get_nowait()
                logger.warning(
                    "Application for channel %r ended without taking a message of type %r",
                    self.channel,
                    lost.get("type"),
                )

    async def _receive(self) -> Message:
        # Asking with nothing queued means the previous message is done with.
        if self._inbox.empty():
            self.in_hand = None
            asked = self._asked
            if asked is not None and not asked.done():
                asked.set_result(None)
        return await self._inbox.get()

    async def handle(self, message: Message) -> None:
        """Give ``message`` to the instance; return once it asks for the next one or ends."""
        asked = self._asked = asyncio.get_running_loop().create_future()
        self.in_hand = message
        self._inbox.put_nowait(message)
        await asyncio.wait((asked, self.task), return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        """End the instance (cancelling it where it waits) and wait until it has."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class Worker:
    """Feeds the messages of ``channels`` on ``channel_layer`` to ``application``.

    ``await run()`` serves until ``stop()`` is called from the same event loop; ``run`` then
    returns as soon as the messages in hand are finished. A second ``stop()`` cancels those
    too. ``retry_delay`` is the pause, in seconds, after the layer's ``receive`` fails (a
    dead Redis) before the worker tries again.
    """

    def __init__(
        self,
        application: AnyASGIApp,
        channel_layer: BaseChannelLayer,
        channels: Iterable[str],
        *,
        retry_delay: float = 1.0,
    ) -> None:
        names = tuple(dict.fromkeys(channels))  # a channel read twice would lose its order
        if not names:
            raise ValueError("A worker needs at least one channel name")
        for name in names:
            require_worker_channel(name)
        self.application = application
        self.channel_layer = channel_layer
        self.channels = names
        self.retry_delay = retry_delay
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._idle: set[asyncio.Task[None]] = set()  # tasks with no message in hand
        self._instances: dict[str, _Instance] = {}

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping

    async def run(self) -> None:
        """Serve until ``stop()``; return once every message in hand is finished."""
        if self._tasks:
            raise RuntimeError("This worker is already running")
        self._tasks = [asyncio.create_task(self._serve(name)) for name in self.channels]
        logger.info("Worker reading channel(s) %s", ", ".join(self.channels))
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        """Stop receiving; ``run`` returns once the messages in hand are finished.

        Called again, cancel the messages still in hand (logged at WARNING) and stop now.
        """
        if self._stopping:
            for name, instance in self._instances.items():
                if instance.in_hand is not None and not instance.task.done():
                    logger.warning(
                        "Stopping now: cancelling the message of type %r on channel %r",
                        instance.in_hand.get("type"),
                        name,
                    )
            for task in self._tasks:
                task.cancel()
            return
        self._stopping = True
        for task in self._idle:
            task.cancel()

    async def _serve(self, channel: str) -> None:
        task = asyncio.current_task()
        assert task is not None  # always run as a task by ``run``
        try:
            while True:
                self._idle.add(task)
                try:
                    message = await self._next_message(channel)
                finally:
                    self._idle.discard(task)
                if message is None:
                    return
                instance = self._instances.get(channel)
                if instance is None or instance.task.done():
                    instance = self._instances[channel] = _Instance(self.application, channel)
                await instance.handle(message)
        except asyncio.CancelledError:
            # stop() cancels a task that waits for a message, a second stop() one with a
            # message in hand: an ordinary end. Any other cancellation goes on up.
            if self._stopping and task.uncancel() == 0:
                return
            raise
        finally:
            instance = self._instances.pop(channel, None)
            if instance is not None:
                await instance.close()

    async def _next_message(self, channel: str) -> Message | None:
        """The next message on ``channel``; ``None`` once the worker is stopping."""
        while not self._stopping:
            try:
                return await self.channel_layer.receive(channel)
            except Exception:
                logger.exception(
                    "Receiving from channel %r failed; trying again in %s s",
                    channel,
                    self.retry_delay,
                )
                await asyncio.sleep(self.retry_delay)
        return None


async def serve(
    worker: Worker,
    *,
    stop_signals: Collection[signal.Signals] = STOP_SIGNALS,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run ``worker`` until one of ``stop_signals`` arrives, then as ``Worker.stop()`` does.

    The first signal lets the messages in hand finish; a second one stops at once. The
    previous signal handlers are put back on return. Signals reach only the main thread, so
    elsewhere no handler is installed and the caller must call ``worker.stop()`` itself.
    ``on_ready`` is called once the handlers are in place and the worker is about to read.
    """
    loop = asyncio.get_running_loop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes: hand over to the loop, do nothing else.
        loop.call_soon_threadsafe(stop, signal.Signals(signum))

    def stop(signum: signal.Signals) -> None:
        if worker.stopping:
            logger.warning("Received %s again: stopping now", signum.name)
        else:
            logger.info(
                "Received %s: finishing the messages in hand, then exiting (send it again to "
                "stop at once)",
                signum.name,
            )
        worker.stop()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in stop_signals:
            previous[signum] = signal.signal(signum, on_signal)
    try:
        if on_ready is not None:
            on_ready()
        await worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


__all__ = [
    "STOP_SIGNALS",
    "Worker",
    "require_worker_channel",
    "serve",
    "unrouted_channels",
]
