"""ProtocolTypeRouter, URLRouter and ChannelNameRouter."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest
from django.urls import path, re_path

from channelworks import routing
from channelworks.consumers import AsyncConsumer, AsyncWebsocketConsumer
from channelworks.exceptions import NoRouteFound
from channelworks.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channelworks.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from channelworks.types import Message, Receive, Scope, Send


class Route(AsyncWebsocketConsumer):
    """Accepts, then reports its url_route and the path it saw."""

    async def connect(self) -> None:
        await self.accept()
        route = self.scope["url_route"]
        await self.send(
            text_data=repr(
                (
                    list(route["args"]),
                    route["kwargs"],
                    self.scope["route_name"],
                    self.scope["path"],
                )
            )
        )


async def routed(app: Any, url: str) -> Any:
    comm = WebsocketCommunicator(app, url)
    connected, _ = await comm.connect()
    assert connected
    result = await comm.receive_from()
    await comm.disconnect()
    return eval(result)


async def test_path_converters_fill_kwargs() -> None:
    app = URLRouter([path("chat/<int:room>/<slug:mode>/", Route.as_asgi(), name="chat")])
    assert await routed(app, "/chat/42/live/") == (
        [],
        {"room": 42, "mode": "live"},
        "chat",
        "/chat/42/live/",
    )


async def test_re_path_positional_and_named_groups() -> None:
    app = URLRouter(
        [
            re_path(r"^pos/(\d+)/$", Route.as_asgi()),
            re_path(r"^named/(?P<word>\w+)/$", Route.as_asgi()),
        ]
    )
    assert (await routed(app, "/pos/7/"))[0] == ["7"]
    assert (await routed(app, "/named/hey/"))[1] == {"word": "hey"}


async def test_path_default_kwargs_join_the_captures() -> None:
    app = URLRouter([path("feed/<int:page>/", Route.as_asgi(), {"kind": "live", "page": 1})])
    assert (await routed(app, "/feed/3/"))[1] == {"page": 1, "kind": "live"}


async def test_first_matching_route_wins() -> None:
    app = URLRouter(
        [path("a/", Route.as_asgi(), name="first"), path("a/", Route.as_asgi(), name="second")]
    )
    assert (await routed(app, "/a/"))[2] == "first"


async def test_nested_routers_merge_captures() -> None:
    # channelworks.routing's path/re_path are Django's, typed to take ASGI apps like routers
    inner = URLRouter([path("room/<int:pk>/", Route.as_asgi(), name="room")])
    middle = URLRouter([routing.re_path(r"^v(?P<version>\d)/", inner)])
    app = URLRouter([routing.path("api/<str:tenant>/", middle)])
    _, kwargs, name, full = await routed(app, "/api/acme/v2/room/5/")
    assert kwargs == {"tenant": "acme", "version": "2", "pk": 5}
    assert name == "room"
    assert full == "/api/acme/v2/room/5/"


async def test_root_path_is_stripped() -> None:
    app = URLRouter([path("ws/", Route.as_asgi())])
    comm = WebsocketCommunicator(app, "/prefix/ws/")
    comm.scope["root_path"] = "/prefix"
    assert (await comm.connect())[0]
    await comm.disconnect()


async def test_no_websocket_route_closes_before_accept(caplog: pytest.LogCaptureFixture) -> None:
    app = URLRouter([path("known/", Route.as_asgi())])
    with caplog.at_level(logging.WARNING, logger="channelworks.routing"):
        comm = WebsocketCommunicator(app, "/unknown/")
        assert await comm.connect() == (False, 1000)
        await comm.wait()
    assert "'/unknown/'" in caplog.text


async def test_no_http_route_raises_value_error() -> None:
    app = URLRouter([path("known/", Route.as_asgi())])
    with pytest.raises(ValueError, match="No route found for path '/nope/'"):
        await HttpCommunicator(app, "GET", "/nope/").get_response()


async def test_no_route_for_other_protocols_raises() -> None:
    app = URLRouter([path("known/", Route.as_asgi())])
    comm = ApplicationCommunicator(app, {"type": "custom", "path": "/nope/"})
    with pytest.raises(NoRouteFound, match="'/nope/'"):
        await comm.wait()


def test_routes_must_be_django_patterns() -> None:
    with pytest.raises(TypeError, match="use path"):
        URLRouter(["not a route"])


class Telegram(AsyncConsumer):
    async def telegram_message(self, message: Message) -> None:
        await self.send({"type": "telegram.message", "text": f"You said: {message['text']}"})


async def test_protocol_type_router_routes_custom_types() -> None:
    app = ProtocolTypeRouter({"telegram": Telegram.as_asgi()})
    async with ApplicationCommunicator(app, {"type": "telegram"}) as comm:
        await comm.send_input({"type": "telegram.message", "text": "hi"})
        assert (await comm.receive_output())["text"] == "You said: hi"


async def test_protocol_type_router_unknown_type_raises() -> None:
    comm = ApplicationCommunicator(ProtocolTypeRouter({}), {"type": "mqtt"})
    with pytest.raises(NoRouteFound, match="'mqtt'"):
        await comm.wait()


async def test_lifespan_is_answered_when_not_routed() -> None:
    comm = ApplicationCommunicator(ProtocolTypeRouter({}), {"type": "lifespan"})
    await comm.send_input({"type": "lifespan.startup"})
    assert await comm.receive_output() == {"type": "lifespan.startup.complete"}
    await comm.send_input({"type": "lifespan.shutdown"})
    assert await comm.receive_output() == {"type": "lifespan.shutdown.complete"}
    await comm.wait()


async def test_lifespan_is_passed_through_when_routed() -> None:
    seen: list[str] = []

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive())["type"])

    comm = ApplicationCommunicator(ProtocolTypeRouter({"lifespan": lifespan}), {"type": "lifespan"})
    await comm.send_input({"type": "lifespan.startup"})
    await comm.wait()
    assert seen == ["lifespan.startup"]


async def test_channel_name_router() -> None:
    class Worker(AsyncConsumer):
        async def thumbnail_generate(self, message: Message) -> None:
            await self.send({"type": "done", "id": message["id"]})

    router = ChannelNameRouter({"thumbnail-generate": Worker.as_asgi()})
    assert list(router.channel_names) == ["thumbnail-generate"]
    scope = {"type": "channel", "channel": "thumbnail-generate"}
    async with ApplicationCommunicator(router, scope) as comm:
        await comm.send_input({"type": "thumbnail.generate", "id": 9})
        assert await comm.receive_output() == {"type": "done", "id": 9}
    missing = ApplicationCommunicator(router, {"type": "channel", "channel": "other"})
    with pytest.raises(NoRouteFound, match="'other'"):
        await missing.wait()


def test_get_default_application_reads_asgi_application() -> None:
    code = """
import sys
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
settings.configure(ASGI_APPLICATION="tests.test_routing.module_level_app")
from channelworks.routing import get_default_application
import tests.test_routing as module
print(get_default_application() is module.module_level_app)
settings.ASGI_APPLICATION = "tests.test_routing.nothing_here"
try:
    get_default_application()
except ImproperlyConfigured as exc:
    print("nothing_here" in str(exc))
settings.ASGI_APPLICATION = None
try:
    get_default_application()
except ImproperlyConfigured as exc:
    print("must name" in str(exc))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["True", "True", "True"]


module_level_app = ProtocolTypeRouter({})


async def _leaf(scope: Scope, receive: Receive, send: Send) -> str:
    return str(scope["path"])


_NONE: Any = None  # receive and send: these applications never call them


async def test_routers_hand_over_the_applications_awaitable_and_pass_for_asgi3() -> None:
    """No router frame stays in a connection's await chain (about 400 bytes each, for the
    connection's life): a router returns the application's own coroutine. Servers still
    take routers for ASGI 3 applications, by each of their tests (uvicorn: asyncio's on
    ``__call__``; hypercorn: ``inspect`` on the instance; daphne: asgiref's)."""
    import asyncio
    import inspect

    from asgiref.compatibility import guarantee_single_callable

    routers: list[Any] = [
        ProtocolTypeRouter({"websocket": URLRouter([routing.path("x/", _leaf)])}),
        URLRouter([routing.path("x/", _leaf)]),
        ChannelNameRouter({"x": _leaf}),
    ]
    for router in routers:
        scope = {"type": "websocket", "path": "/x/", "channel": "x"}
        awaitable = router(scope, _NONE, _NONE)
        assert inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED
        assert awaitable.cr_code is _leaf.__code__
        assert await awaitable == "/x/"
        assert inspect.iscoroutinefunction(router)
        assert asyncio.iscoroutinefunction(router.__call__)
        assert guarantee_single_callable(router) is router  # type: ignore[no-untyped-call]
        assert isinstance(router.__name__, str)
    assert ProtocolTypeRouter.__name__ == "ProtocolTypeRouter"  # the class keeps its name


async def test_a_nested_router_without_a_match_still_hands_over_to_the_next_route() -> None:
    inner = URLRouter([routing.path("a/", _leaf)])
    outer = URLRouter([routing.path("n/", inner), routing.re_path(r"^n/(?P<rest>.*)$", _leaf)])
    assert await outer({"type": "http", "path": "/n/a/"}, _NONE, _NONE) == "/n/a/"
    assert await outer({"type": "http", "path": "/n/b/"}, _NONE, _NONE) == "/n/b/"
    with pytest.raises(NoRouteFound):
        await outer({"type": "http", "path": "/z/"}, _NONE, _NONE)
