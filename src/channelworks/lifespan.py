"""Closing the channel layers as a server process ends (ASGI lifespan shutdown, ``runworker``).

A layer left open when its process exits leaves its traces in the broker until they expire:
the Redis layer's alive key and its process in every group it had members of (so other
processes keep sending to a dead process for up to ``process_timeout``), the RabbitMQ
layer's process queue and its bindings. ``close()`` takes them away at once, so other
processes stop sending to this one as soon as it stops.

``ProtocolTypeRouter`` calls ``close_channel_layers()`` on ``lifespan.shutdown`` when the
project does not route ``lifespan`` itself (a project that does should call it from its own
shutdown), and ``runworker`` calls it as it stops.
"""

from __future__ import annotations

import asyncio
import logging

from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.registry import channel_layers

logger = logging.getLogger("channelworks.lifespan")

#: seconds the layers together may take to close (the Redis layer first sends the group sends
#: it has queued, for up to its ``retry_timeout`` plus a second)
CLOSE_TIMEOUT = 10.0


async def close_channel_layers(*extra: BaseChannelLayer, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close every layer this process built from ``CHANNEL_LAYERS`` (and ``extra`` ones), at
    once, and forget them: the next ``get_channel_layer()`` builds a new one.

    Call it on the loop the layers ran on, as the process ends. A layer that fails or takes
    longer than ``timeout`` seconds to close is logged, not raised: shutting down goes on.
    """
    layers: dict[int, BaseChannelLayer] = {}
    for alias, layer in list(channel_layers.backends.items()):
        layers[id(layer)] = layer
        if channel_layers.backends.get(alias) is layer:
            del channel_layers.backends[alias]
    for layer in extra:
        layers[id(layer)] = layer
    if not layers:
        return
    closing = list(layers.values())
    try:
        async with asyncio.timeout(timeout):
            results = await asyncio.gather(
                *(layer.close() for layer in closing), return_exceptions=True
            )
    except TimeoutError:
        logger.error("Channel layers still closing after %.0f s: left as they are", timeout)
        return
    for layer, result in zip(closing, results, strict=True):
        if isinstance(result, Exception):
            logger.error("Channel layer %r failed to close: %s", layer, result)


__all__ = ["CLOSE_TIMEOUT", "close_channel_layers"]
