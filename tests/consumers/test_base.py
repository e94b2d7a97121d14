"""AsyncConsumer / SyncConsumer: dispatch, dispatch safety, threads, as_asgi, channel layer."""

from __future__ import annotations

import abc
import asyncio
import functools
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from unittest import mock
from unittest.mock import AsyncMock

import pytest
from asgiref.sync import sync_to_async

from channelworks.consumers import AsyncConsumer, SyncConsumer
from channelworks.consumers.handlers import is_method, resolve
from channelworks.exceptions import StopConsumer, UnhandledMessageType
from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import ApplicationCommunicator
from channelworks.types import Message

SCOPE = {"type": "test"}


class Recorder(AsyncConsumer):
    label: ClassVar[str] = "plain"

    async def chat_message(self, event: Message) -> None:
        await self.send({"type": "out", "got": event["text"], "label": self.label})

    async def finish_now(self, event: Message) -> None:
        raise StopConsumer

    async def boom_now(self, event: Message) -> None:
        raise RuntimeError("handler exploded")


class SyncRecorder(SyncConsumer):
    def chat_message(self, event: Message) -> None:
        self.send({"type": "out", "thread": threading.current_thread().name})

    def slow_work(self, event: Message) -> None:
        threading.Event().wait(event["seconds"])
        self.send({"type": "out", "slow": True})


async def test_type_is_dispatched_to_handler() -> None:
    async with ApplicationCommunicator(Recorder.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message", "text": "hi"})
        assert await comm.receive_output() == {"type": "out", "got": "hi", "label": "plain"}


@pytest.mark.parametrize(
    "message_type",
    [
        "send",
        "close",
        "dispatch",
        "as.asgi",
        "handle.exception",
        "join.groups",
        "call.hook",
        "__init__",
        "_resolve",
        ".private",
        "base.send",
        "channel.layer",
        "no.such.handler",
        "",
        7,
        None,
    ],
)
async def test_non_handlers_are_never_reached(message_type: Any) -> None:
    comm = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await comm.send_input({"type": message_type})
    with pytest.raises(UnhandledMessageType) as info:
        await comm.wait()
    assert info.value.type == message_type
    assert "Recorder" in str(info.value)
    assert repr(message_type) in str(info.value)


async def test_unhandled_type_is_a_value_error_for_channels_code() -> None:
    assert issubclass(UnhandledMessageType, ValueError)


async def test_stop_consumer_ends_quietly() -> None:
    comm = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await comm.send_input({"type": "finish.now"})
    await comm.wait()


async def test_handler_error_ends_the_consumer_with_it() -> None:
    comm = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await comm.send_input({"type": "boom.now"})
    with pytest.raises(RuntimeError, match="handler exploded"):
        await comm.wait()


async def test_sync_handlers_run_in_a_worker_thread() -> None:
    async with ApplicationCommunicator(SyncRecorder.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message"})
        out = await comm.receive_output()
        assert out["thread"] != threading.main_thread().name


async def test_slow_sync_handler_does_not_block_other_consumers() -> None:
    async with (
        ApplicationCommunicator(SyncRecorder.as_asgi(), SCOPE) as slow,
        ApplicationCommunicator(SyncRecorder.as_asgi(), SCOPE) as fast,
    ):
        await slow.send_input({"type": "slow.work", "seconds": 1})
        await asyncio.sleep(0.05)
        await fast.send_input({"type": "chat.message"})
        assert "thread" in await fast.receive_output(timeout=0.8)
        assert slow.output_queue.empty()  # the slow one is still working
        assert (await slow.receive_output(timeout=2))["slow"] is True


async def test_sync_handler_in_async_consumer_is_refused() -> None:
    class Mixed(AsyncConsumer):
        def chat_message(self, event: Message) -> None:
            pass

    comm = ApplicationCommunicator(Mixed.as_asgi(), SCOPE)
    await comm.send_input({"type": "chat.message"})
    with pytest.raises(TypeError, match=r"Mixed.chat_message must be 'async def'"):
        await comm.wait()


def logged(handler: Callable[[Any, Message], Awaitable[None]]) -> Callable[..., Any]:
    """A decorator whose wrapper is a plain def returning the handler's coroutine."""

    def wrapper(self: Any, event: Message) -> Awaitable[None]:
        event = {**event, "logged": True}
        return handler(self, event)

    return wrapper


async def test_decorated_handler_returning_a_coroutine_is_awaited() -> None:
    class Decorated(AsyncConsumer):
        @logged
        async def chat_message(self, event: Message) -> None:
            await self.send({"type": "out", "logged": event["logged"]})

    async with ApplicationCommunicator(Decorated.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message"})
        assert await comm.receive_output() == {"type": "out", "logged": True}


async def test_patching_a_handler_takes_effect_after_first_use() -> None:
    class Patchable(AsyncConsumer):
        async def ping(self, event: Message) -> None:
            await self.send({"type": "out", "via": "original"})

    async with ApplicationCommunicator(Patchable.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "ping"})
        assert (await comm.receive_output())["via"] == "original"
    replacement = AsyncMock()
    with mock.patch.object(Patchable, "ping", replacement):
        async with ApplicationCommunicator(Patchable.as_asgi(), SCOPE) as comm:
            await comm.send_input({"type": "ping", "n": 1})
            await comm.receive_nothing()
    replacement.assert_awaited_once_with({"type": "ping", "n": 1})


async def test_static_and_class_methods_are_not_handlers() -> None:
    class Helpers(AsyncConsumer):
        @staticmethod
        def purge_cache(event: Message) -> None:
            raise AssertionError("reached")

        @classmethod
        def build_thing(cls, event: Message) -> None:
            raise AssertionError("reached")

    for kind in ("purge.cache", "build.thing"):
        comm = ApplicationCommunicator(Helpers.as_asgi(), SCOPE)
        await comm.send_input({"type": kind})
        with pytest.raises(UnhandledMessageType, match=repr(kind)):
            await comm.wait()


async def test_bare_async_consumer_reports_unhandled_types() -> None:
    comm = ApplicationCommunicator(AsyncConsumer.as_asgi(), SCOPE)
    await comm.send_input({"type": "anything"})
    with pytest.raises(UnhandledMessageType, match="AsyncConsumer"):
        await comm.wait()


async def test_a_plain_consumer_may_handle_names_other_consumers_reserve() -> None:
    class Worker(AsyncConsumer):
        async def receive(self, event: Message) -> None:  # reserved by WebSocket consumers only
            await self.send({"type": "out", "got": event["n"]})

    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "receive", "n": 5})
        assert await comm.receive_output() == {"type": "out", "got": 5}


async def test_as_asgi_sets_initkwargs_per_instance() -> None:
    app = Recorder.as_asgi(label="custom")
    assert app.consumer_class is Recorder
    assert app.consumer_initkwargs == {"label": "custom"}
    async with ApplicationCommunicator(app, SCOPE) as comm:
        await comm.send_input({"type": "chat.message", "text": "x"})
        assert (await comm.receive_output())["label"] == "custom"
    assert Recorder.label == "plain"


def test_as_asgi_refuses_unknown_keywords_and_methods() -> None:
    with pytest.raises(TypeError, match="'labl', which is not an attribute"):
        Recorder.as_asgi(labl="typo")
    with pytest.raises(TypeError, match="cannot replace method or property 'chat_message'"):
        Recorder.as_asgi(chat_message=print)

    class WithProperty(Recorder):
        @property
        def title(self) -> str:
            return "fixed"

    with pytest.raises(TypeError, match="property 'title'"):
        WithProperty.as_asgi(title="new")
    with pytest.raises(TypeError, match="sync_handlers is fixed"):
        Recorder.as_asgi(sync_handlers=True)


async def test_layer_messages_reach_the_consumer_by_channel_name(
    channel_layer: InMemoryChannelLayer,
) -> None:
    class Named(AsyncConsumer):
        async def hello_there(self, event: Message) -> None:
            await self.send({"type": "out", "name": self.channel_name, "text": event["text"]})

        async def whoami(self, event: Message) -> None:
            await self.send({"type": "out", "name": self.channel_name})

    async with ApplicationCommunicator(Named.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "whoami"})
        name = (await comm.receive_output())["name"]
        assert "!" in name
        await channel_layer.send(name, {"type": "hello.there", "text": "from afar"})
        assert await comm.receive_output() == {"type": "out", "name": name, "text": "from afar"}


async def test_layer_handler_error_ends_the_consumer(channel_layer: InMemoryChannelLayer) -> None:
    class Fragile(AsyncConsumer):
        async def whoami(self, event: Message) -> None:
            await self.send({"type": "out", "name": self.channel_name})

        async def explode(self, event: Message) -> None:
            raise RuntimeError("layer handler exploded")

    comm = ApplicationCommunicator(Fragile.as_asgi(), SCOPE)
    await comm.send_input({"type": "whoami"})
    name = (await comm.receive_output())["name"]
    await channel_layer.send(name, {"type": "explode"})
    with pytest.raises(RuntimeError, match="layer handler exploded"):
        await comm.wait()


async def test_layer_stop_consumer_ends_quietly(channel_layer: InMemoryChannelLayer) -> None:
    class Stoppable(AsyncConsumer):
        async def whoami(self, event: Message) -> None:
            await self.send({"type": "out", "name": self.channel_name})

        async def stop_please(self, event: Message) -> None:
            raise StopConsumer

    comm = ApplicationCommunicator(Stoppable.as_asgi(), SCOPE)
    await comm.send_input({"type": "whoami"})
    name = (await comm.receive_output())["name"]
    await channel_layer.send(name, {"type": "stop.please"})
    await comm.wait()


async def test_handlers_of_one_consumer_never_overlap(channel_layer: InMemoryChannelLayer) -> None:
    active: list[int] = []
    overlaps: list[int] = []

    class Serial(AsyncConsumer):
        async def whoami(self, event: Message) -> None:
            await self.send({"type": "out", "name": self.channel_name})

        async def work(self, event: Message) -> None:
            active.append(1)
            if len(active) > 1:
                overlaps.append(1)
            await asyncio.sleep(0.01)
            active.pop()
            await self.send({"type": "done"})

    async with ApplicationCommunicator(Serial.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "whoami"})
        name = (await comm.receive_output())["name"]
        for _ in range(5):
            await comm.send_input({"type": "work"})
            await channel_layer.send(name, {"type": "work"})
        for _ in range(10):
            assert (await comm.receive_output())["type"] == "done"
    assert overlaps == []


async def test_without_a_layer_there_is_no_channel_name() -> None:
    class Bare(AsyncConsumer):
        async def whoami(self, event: Message) -> None:
            await self.send({"type": "out", "layer": self.channel_layer, "n": self.channel_name})

    async with ApplicationCommunicator(Bare.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "whoami"})
        assert await comm.receive_output() == {"type": "out", "layer": None, "n": None}


async def test_turn_passes_on_when_its_waiter_is_cancelled() -> None:
    from channelworks.consumers.base import _Turn

    turn = _Turn()
    turn.busy = True  # held by a first pump
    second = asyncio.create_task(turn.wait())
    await asyncio.sleep(0)
    turn.release()  # handed to the second pump...
    second.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await second
    assert not turn.busy  # passed on, not lost: a third pump can take it
    assert turn.waiting is None


async def test_turn_cancelled_while_waiting_leaves_it_held() -> None:
    from channelworks.consumers.base import _Turn

    turn = _Turn()
    turn.busy = True
    waiter = asyncio.create_task(turn.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert turn.busy
    assert turn.waiting is None
    turn.release()
    assert not turn.busy


def wrapped(handler: Callable[[Any, Message], Awaitable[None]]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def wrapper(self: Any, event: Message) -> Awaitable[None]:
        return handler(self, event)

    return wrapper


async def test_sync_consumer_awaits_what_a_wrapped_handler_returns() -> None:
    class SyncWithAsyncInside(SyncConsumer):
        @wrapped
        async def chat_message(self, event: Message) -> None:
            await AsyncConsumer.send(self, {"type": "out", "ran": True})

    async with ApplicationCommunicator(SyncWithAsyncInside.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message"})
        assert await comm.receive_output() == {"type": "out", "ran": True}


async def test_sync_to_async_method_is_a_handler_of_an_async_consumer() -> None:
    class Mixed(AsyncConsumer):
        @sync_to_async
        def blocking_work(self, event: Message) -> None:
            self.seen = threading.current_thread().name

        async def report(self, event: Message) -> None:
            await self.send({"type": "out", "thread": self.seen})

    async with ApplicationCommunicator(Mixed.as_asgi(), SCOPE) as comm:
        for _ in range(3):
            await comm.send_input({"type": "blocking.work"})
        await comm.send_input({"type": "report"})
        assert (await comm.receive_output())["thread"] != threading.main_thread().name
    assert len(Mixed._handlers) == 2


class Recording(abc.ABC):  # noqa: B024 - only its metaclass matters here
    """A mixin with ABCMeta as metaclass: ``register`` is an attribute of the class."""


class Guarded(AsyncConsumer, Recording):
    calls: ClassVar[list[str]] = []

    class Options:  # a nested class is callable: calling it would build one
        def __init__(self, event: Message) -> None:
            Guarded.calls.append("Options")

    builtin = print
    c_method = dict.get
    callable_object = functools.partial(print)

    async def _secret(self, event: Message) -> None:
        Guarded.calls.append("_secret")

    async def __private(self, event: Message) -> None:
        Guarded.calls.append("__private")

    async def a__b(self, event: Message) -> None:
        await self.send({"type": "out", "handled": "a__b"})


@pytest.mark.parametrize(
    "message_type",
    [
        "mro",  # type.mro, through the metaclass
        "register",  # ABCMeta.register
        "options",
        "Options",
        "builtin",
        "c.method",
        "callable.object",
        "_secret",
        "._secret",
        ".secret",
        "..secret",
        "_Guarded__private",
        "._Guarded__private",
        "__init__",
        "..init..",
        "__class__",
        "__subclasshook__",
        "calls",
    ],
)
async def test_only_methods_of_the_consumers_own_classes_are_handlers(message_type: str) -> None:
    Guarded.calls.clear()
    comm = ApplicationCommunicator(Guarded.as_asgi(), SCOPE)
    await comm.send_input({"type": message_type})
    with pytest.raises(ValueError, match=re.escape(repr(message_type))) as info:
        await comm.wait()
    assert isinstance(info.value, UnhandledMessageType)  # what Channels raises, made specific
    assert Guarded.calls == []


async def test_a_double_underscore_inside_a_type_still_reaches_its_handler() -> None:
    async with ApplicationCommunicator(Guarded.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "a..b"})
        assert await comm.receive_output() == {"type": "out", "handled": "a__b"}


def test_resolve_never_looks_at_the_metaclass() -> None:
    for name in dir(type(Guarded)):
        with pytest.raises(UnhandledMessageType):
            resolve(Guarded, name, sync_allowed=False)
    with pytest.raises(UnhandledMessageType):
        resolve(Guarded, "mro", sync_allowed=True)


def test_descriptor_handlers_and_mocks_are_methods() -> None:
    assert is_method(Recorder.chat_message)
    assert is_method(sync_to_async(print))
    assert is_method(AsyncMock())
    for value in (Guarded.Options, print, dict.get, functools.partial(print), 3, None):
        assert not is_method(value), value


async def test_a_consumer_made_by_exec_has_its_handlers() -> None:
    """A class made by exec() without a __name__ says its module is "builtins" (the README's
    tutorial test makes its consumers that way): its methods are handlers all the same."""
    namespace: dict[str, Any] = {"AsyncConsumer": AsyncConsumer}
    exec(
        "class Made(AsyncConsumer):\n"
        "    async def chat_message(self, event):\n"
        "        await self.send({'type': 'out', 'made': True})\n",
        namespace,
    )
    made = namespace["Made"]
    assert made.__module__ == "builtins"
    async with ApplicationCommunicator(made.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message"})
        assert await comm.receive_output() == {"type": "out", "made": True}


@pytest.mark.parametrize("message_type", ["_secret", "._secret", ".secret", "mro"])
async def test_a_websocket_server_event_naming_no_handler_raises_value_error(
    message_type: str,
) -> None:
    """As in Channels, a server event whose type names no handler (private, dotted away, the
    metaclass's) raises ValueError out of the application; the socket is closed first."""
    from channelworks.consumers import AsyncWebsocketConsumer
    from channelworks.testing import WebsocketCommunicator

    class Socket(AsyncWebsocketConsumer):
        async def _secret(self, event: Message) -> None:
            raise AssertionError("reached")

        async def secret(self, event: Message) -> None:
            raise AssertionError("reached")

    comm = WebsocketCommunicator(Socket.as_asgi(), "/")
    assert (await comm.connect())[0]
    await comm.send_input({"type": message_type})
    assert (await comm.receive_output())["code"] == 1011
    with pytest.raises(ValueError, match=re.escape(repr(message_type))):
        await comm.wait()


async def test_a_consumer_served_bare_refuses_the_lifespan_scope_before_sending() -> None:
    # uvicorn's "auto" lifespan mode then logs "unsupported" and goes on; a close sent on
    # the lifespan scope instead made it log an error with a traceback
    from channelworks.consumers import AsyncWebsocketConsumer

    class Bare(AsyncWebsocketConsumer):
        pass

    comm = ApplicationCommunicator(Bare.as_asgi(), {"type": "lifespan"})
    await comm.send_input({"type": "lifespan.startup"})
    with pytest.raises(ValueError, match="does not handle the 'lifespan' scope"):
        await comm.wait()
    assert comm.output_queue.empty()


async def test_a_consumer_with_lifespan_handlers_still_gets_the_lifespan_scope() -> None:
    class WithLifespan(AsyncConsumer):
        async def lifespan_startup(self, message: Message) -> None:
            await self.send({"type": "lifespan.startup.complete"})

    comm = ApplicationCommunicator(WithLifespan.as_asgi(), {"type": "lifespan"})
    await comm.send_input({"type": "lifespan.startup"})
    assert await comm.receive_output() == {"type": "lifespan.startup.complete"}
    await comm.stop()
