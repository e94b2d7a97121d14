"""When a consumer gives the event loop a turn between two of its messages.

Rule (as in Channels): tasks a handler started run, up to their first wait, before the next
message of the same consumer is handled. A turn costs a task step per message, which would
double the cost of a fan-out, so it is given only when it can matter:

- not when getting the message had to wait (the loop had its turns meanwhile: ``take``);
- not when no task was created on the loop since the last message was handed over:
  ``TaskCount`` counts the loop's task creations through its task factory (wrapping any
  factory already set). A loop whose factory is replaced after ours cannot be counted; then
  every message gets its turn (``TaskCount.reliable`` is false).
"""

from __future__ import annotations

import asyncio
import types
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ClassVar

from channelworks.types import Message


class TaskCount:
    """How many tasks the loop created so far (read ``created``); one per loop (``of``)."""

    _counts: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TaskCount]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.created = 0
        previous = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            self.created += 1
            if previous is None:
                return asyncio.Task(coro, loop=loop, **kwargs)
            return previous(loop, coro, **kwargs)

        self.factory = factory
        loop.set_task_factory(factory)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> TaskCount:
        count = cls._counts.get(loop)
        if count is None:
            count = cls._counts[loop] = cls(loop)
        return count

    @property
    def reliable(self) -> bool:
        """Whether every task creation on the loop still goes through the count."""
        return self.loop.get_task_factory() is self.factory


@types.coroutine
def take(source: Callable[[], Awaitable[Message]]) -> Generator[Any, Any, tuple[Message, bool]]:
    """``(await source(), waited)``: ``waited`` is false if ``source()`` returned without
    suspending, that is, without the event loop getting a turn.

    ``yield from`` with the first step taken by hand, to see whether the awaitable suspends.
    Whatever the task receives while waiting (a value, or an exception such as a
    cancellation) is passed on to the awaitable unchanged.
    """
    steps = source().__await__()
    try:
        signal = steps.send(None)
    except StopIteration as done:
        return done.value, False
    while True:
        try:
            value = yield signal
        except BaseException as exc:  # a cancellation, or GeneratorExit: the source handles it
            try:
                signal = steps.throw(exc)
            except StopIteration as done:
                return done.value, True
        else:
            try:
                signal = steps.send(value)
            except StopIteration as done:
                return done.value, True


__all__ = ["TaskCount", "take"]
