"""Run a channel-name worker inside each server process, started and stopped by ASGI lifespan.

``manage.py runworker`` runs workers as processes of their own, which is what a deployment
wants. The demo is one command, so the server runs the worker itself: on ``lifespan.startup``
a ``Worker`` starts reading its channels on the server's event loop, and on
``lifespan.shutdown`` it finishes the messages in hand and the channel layer is closed.

With the in-memory layer this is the only way: its channels live in one process. With Redis,
each server process runs one and the layer shares the channel's messages among them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from channelworks.layers import get_channel_layer
from channelworks.types import AnyASGIApp, Receive, Scope, Send
from channelworks.worker import Worker

logger = logging.getLogger("channelworks.demo")


class WorkerLifespan:
    """A ``lifespan`` application running ``application`` as a ``Worker`` for ``channels``.

    Put it under ``"lifespan"`` in the ``ProtocolTypeRouter``; the server must run lifespan
    (uvicorn's ``--lifespan on``, its default ``auto`` also works).
    """

    #: seconds the messages in hand get to finish when the server stops
    shutdown_timeout = 5.0

    def __init__(self, application: AnyASGIApp, channels: Iterable[str]) -> None:
        self.application = application
        self.channels = tuple(channels)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        worker: Worker | None = None
        task: asyncio.Task[None] | None = None
        try:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    layer = get_channel_layer()
                    if layer is None:
                        failed = {"type": "lifespan.startup.failed", "message": "No channel layer"}
                        await send(failed)
                        return
                    worker = Worker(self.application, layer, self.channels)
                    task = asyncio.create_task(worker.run())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if worker is not None and task is not None:
                        await self._stop(worker, task)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        except asyncio.CancelledError:
            # A forced exit (a second Ctrl-C): the server skips lifespan.shutdown and the loop
            # cancels every task. The worker's messages in hand are cut short; this ends
            # quietly, as the server reports a lifespan that raised as an error, traceback
            # and all, for what the user asked for.
            if task is not None:
                task.cancel()
            logger.info("Forced exit: the worker stopped without finishing its messages")

    async def _stop(self, worker: Worker, task: asyncio.Task[None]) -> None:
        worker.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.shutdown_timeout)
        except TimeoutError:
            worker.stop()  # a second stop cancels what is still in hand
            await asyncio.gather(task, return_exceptions=True)
        await worker.channel_layer.close()
