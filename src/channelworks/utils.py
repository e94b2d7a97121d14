"""Small helpers Channels projects import from ``channels.utils``.

``await_many_dispatch`` is what a consumer's run loop does: wait on several message sources
at once and hand each message to a dispatcher as it comes. channelworks' own consumers do not
use it (they read the server and the layer with two pumps, consumers/base.py); it is here for
custom consumers written against Channels.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


def name_that_thing(thing: object) -> str:
    """A readable dotted name of ``thing`` for logs and errors.

    A class or function by its module and qualified name; a bound method by its owner's name
    and its own; any other object by its class.
    """
    if inspect.ismethod(thing):
        return f"{name_that_thing(thing.__self__)}.{thing.__func__.__name__}"
    if isinstance(thing, type) or inspect.isroutine(thing):
        module = getattr(thing, "__module__", None)
        name = getattr(thing, "__qualname__", None) or getattr(thing, "__name__", repr(thing))
        return f"{module}.{name}" if module else str(name)
    return name_that_thing(type(thing))


async def await_many_dispatch(
    consumer_callables: Iterable[Callable[[], Awaitable[Any]]],
    dispatch: Callable[[Any], Awaitable[Any]],
) -> None:
    """Await every callable of ``consumer_callables`` at once, and each time one returns,
    ``await dispatch(result)`` and call it again; forever, until one of them (or ``dispatch``)
    raises, or this is cancelled.

    Results are dispatched one at a time, in the order their sources are listed when several
    are ready together. On the way out every pending call is cancelled and awaited, so none is
    left running; the error (or the cancellation) then propagates.
    """
    sources = list(consumer_callables)
    pending = [asyncio.ensure_future(source()) for source in sources]
    try:
        while True:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for index, future in enumerate(pending):
                if future.done():
                    # An error ends the loop (below); a source is called again only once its
                    # message is dispatched, so it never takes the next one meanwhile.
                    await dispatch(future.result())
                    pending[index] = asyncio.ensure_future(sources[index]())
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


__all__ = ["await_many_dispatch", "name_that_thing"]
