"""Channels' routers as its documentation describes them, imported as a Channels project does.

Written from Channels' routing documentation: a router is an ASGI application that hands the
scope to the application it picks and returns what that application returns; any ASGI
callable can be routed to; ``URLRouter`` raises ``ValueError("No route found for path ...")``
when nothing matches; nested routers add their captures and an inner router without a match
lets the outer one try its next route; ``include()`` is refused.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include
from django.urls import path as django_path

# Django's path() and re_path(), typed for ASGI applications
from channelworks.routing import path, re_path


@pytest.fixture
def routing() -> ModuleType:
    """``channels.routing``, imported once the package's fixture installed the alias."""
    return importlib.import_module("channels.routing")


class Answer:
    """An ASGI application that returns a value and remembers the scope it got."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.scope: dict[str, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> object:
        self.scope = scope
        return self.value


async def test_routers_return_what_the_application_returns(routing: ModuleType) -> None:
    by_type = routing.ProtocolTypeRouter({"http": Answer("h"), "websocket": Answer("w")})
    assert await by_type({"type": "websocket"}, None, None) == "w"
    by_channel = routing.ChannelNameRouter({"thumbs": Answer(7)})
    assert await by_channel({"type": "channel", "channel": "thumbs"}, None, None) == 7
    by_path = routing.URLRouter([path("a/", Answer("a"))])
    assert await by_path({"type": "http", "path": "/a/"}, None, None) == "a"


async def test_any_asgi_callable_can_be_routed_to(routing: ModuleType) -> None:
    async def plain(scope: dict[str, Any], receive: Any, send: Any) -> str:
        return "plain"

    app = mock.AsyncMock(return_value="mocked")
    router = routing.URLRouter([path("plain/", plain), path("mock/", app)])
    assert await router({"type": "http", "path": "/plain/"}, None, None) == "plain"
    assert await router({"type": "http", "path": "/mock/"}, None, None) == "mocked"
    app.assert_awaited_once()


async def test_url_route_holds_args_and_kwargs_only(routing: ModuleType) -> None:
    target = Answer(1)
    router = routing.URLRouter([re_path(r"^room/(?P<name>\w+)/(\d+)/$", target, name="room")])
    await router({"type": "http", "path": "/room/lobby/3/"}, None, None)
    assert target.scope is not None
    # Django ignores unnamed groups once a pattern has named ones
    assert target.scope["url_route"] == {"args": (), "kwargs": {"name": "lobby"}}
    assert target.scope["route_name"] == "room"  # channelworks' own, outside url_route


async def test_no_route_raises_value_error_naming_the_path(routing: ModuleType) -> None:
    router = routing.URLRouter([path("known/", Answer(1))])
    with pytest.raises(ValueError, match="No route found for path '/unknown/'"):
        await router({"type": "http", "path": "/unknown/"}, None, None)
    with pytest.raises(ValueError, match="No route found"):  # outside root_path: no match
        await router({"type": "http", "path": "/known/", "root_path": "/app"}, None, None)
    with pytest.raises(ValueError, match="'mqtt'"):
        await routing.ProtocolTypeRouter({})({"type": "mqtt"}, None, None)
    with pytest.raises(ValueError, match="'x'"):
        await routing.ChannelNameRouter({})({"type": "channel", "channel": "x"}, None, None)


async def test_an_inner_router_without_a_match_lets_the_outer_one_go_on(
    routing: ModuleType,
) -> None:
    inner = routing.URLRouter([path("other/", Answer("inner"))])
    outer = routing.URLRouter([path("prefix/", inner), path("prefix/stuff/", Answer("next"))])
    assert await outer({"type": "http", "path": "/prefix/stuff/"}, None, None) == "next"


async def test_a_middleware_marked_path_routing_is_matched_as_a_prefix(routing: ModuleType) -> None:
    target = Answer("deep")
    inner = routing.URLRouter([path("page/<int:page>/", target)])

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> object:
        return await inner(scope, receive, send)

    middleware._path_routing = True  # type: ignore[attr-defined]
    outer = routing.URLRouter([path("book/<int:book>/", middleware)])
    assert await outer({"type": "http", "path": "/book/4/page/2/"}, None, None) == "deep"
    assert target.scope is not None
    assert target.scope["url_route"]["kwargs"] == {"book": 4, "page": 2}


def test_include_is_refused(routing: ModuleType) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"include\(\) is not supported in URLRouter"):
        routing.URLRouter([django_path("x/", include([]))])
