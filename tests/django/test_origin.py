"""Origin checks on WebSocket handshakes: ``OriginValidator``, ``AllowedHostsOriginValidator``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient

from channelworks.auth import AuthMiddlewareStack
from channelworks.routing import URLRouter, path
from channelworks.security import AllowedHostsOriginValidator, OriginValidator
from channelworks.security.websocket import (
    REFUSED_CLOSE_CODE,
    WebsocketDenier,
    origin_allowed,
    parse_patterns,
)
from channelworks.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from channelworks.types import Receive, Scope, Send
from tests.django.support import AsyncWhoAmI, ScopeRecorder, session_cookie


def allowed(pattern: str, origin: str) -> bool:
    return origin_allowed([origin], parse_patterns([pattern]))


@pytest.mark.parametrize(
    ("pattern", "origin", "expected"),
    [
        ("*", "http://anything.example", True),
        ("example.com", "http://example.com", True),
        ("example.com", "https://example.com:8443", True),  # no scheme, no port: any
        ("example.com", "http://www.example.com", False),
        ("example.com", "http://example.com.evil.net", False),
        ("example.com", "http://evilexample.com", False),
        (".example.com", "http://example.com", True),
        (".example.com", "https://a.b.example.com", True),
        (".example.com", "http://notexample.com", False),
        ("*.example.com", "http://a.example.com", True),
        ("*.example.com", "http://a.b.example.com", True),
        ("*.example.com", "http://example.com", False),
        ("*.example.com", "http://evil-example.com", False),
        ("example.com:8000", "http://example.com:8000", True),
        ("example.com:8000", "https://example.com:8000", True),
        ("example.com:8000", "http://example.com", False),
        ("example.com:80", "http://example.com", True),  # the scheme's default port
        ("https://example.com", "https://example.com", True),
        ("https://example.com", "https://example.com:443", True),
        ("https://example.com", "http://example.com", False),
        ("https://example.com", "https://example.com:8443", False),
        ("http://example.com:8000", "http://example.com:8000", True),
        ("http://example.com:8000", "http://example.com", False),
        ("http://example.com:8000", "https://example.com:8000", False),
        ("https://.example.com", "https://www.example.com", True),
        ("https://.example.com", "http://www.example.com", False),
        ("https://*.example.com", "https://example.com", False),
        ("https://*", "https://whatever.net", True),
        ("https://*", "http://whatever.net", False),
        ("https://*", "https://whatever.net:8443", False),
        ("  EXAMPLE.com ", "HTTP://Example.COM", True),
        ("[::1]:8000", "http://[::1]:8000", True),
        ("[::1]", "http://[::2]", False),
        ("127.0.0.1", "http://127.0.0.1:8000", True),
        ("chrome-extension://abcdef", "chrome-extension://abcdef", True),
        ("chrome-extension://abcdef", "chrome-extension://ghijkl", False),
    ],
)
def test_pattern_matching(pattern: str, origin: str, expected: bool) -> None:
    assert allowed(pattern, origin) is expected


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "",
        "example.com",
        "http://",
        "http://example.com/",
        "http://example.com/path",
        "http://user@example.com",
        "http://evil.com@example.com",
        "http://user:pw@example.com",
        "http://example.com:99999",
        "http://example.com:abc",
        "http://[::1",
        "http://example.com?x=1",
        "http://example.com#frag",
        "\x00\xff garbage",
    ],
)
def test_malformed_origin_is_refused_unless_everything_is_allowed(origin: str) -> None:
    assert not allowed(".example.com", origin)
    assert allowed("*", origin)


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "http://",
        "://example.com",
        "1http://example.com",
        "example.com/path",
        "user@example.com",
        "example.com:abc",
        "example.com:99999",
        "foo.*.com",
        "*example.com",
        "exa mple.com",
        "[::1",
        "example.com?query",
    ],
)
def test_malformed_pattern_fails_when_the_validator_is_built(pattern: str) -> None:
    with pytest.raises(ValueError, match="Allowed origin"):
        OriginValidator(ScopeRecorder(), [pattern])


def test_patterns_must_be_a_list_of_strings() -> None:
    with pytest.raises(TypeError, match="list of patterns"):
        OriginValidator(ScopeRecorder(), "example.com")
    with pytest.raises(TypeError, match="must be a str"):
        OriginValidator(ScopeRecorder(), [None])  # type: ignore[list-item]


# -- the handshake -----------------------------------------------------------------------------


def origin(value: bytes) -> tuple[bytes, bytes]:
    return b"origin", value


async def handshake(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any]:
    communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
    result = await communicator.connect()
    if result[0]:
        await communicator.disconnect()
    else:
        await communicator.wait()
    return result


async def test_refused_handshake_is_closed_before_accept_and_never_reaches_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = ScopeRecorder()
    communicator = WebsocketCommunicator(
        OriginValidator(recorder, ["https://example.com"]),
        "/ws/chat/",
        headers=[origin(b"https://evil.example")],
    )
    with caplog.at_level(logging.WARNING, logger="channelworks.security"):
        await communicator.send_input({"type": "websocket.connect"})
        assert await communicator.receive_output() == {
            "type": "websocket.close",
            "code": REFUSED_CLOSE_CODE,
        }
        await communicator.wait()
    assert recorder.scopes == []
    assert "'/ws/chat/'" in caplog.text
    assert "'https://evil.example'" in caplog.text


async def test_allowed_handshake_reaches_the_app() -> None:
    recorder = ScopeRecorder()
    app = OriginValidator(recorder, ["https://example.com"])
    assert await handshake(app, [origin(b"https://example.com")]) == (True, None)
    assert len(recorder.scopes) == 1


@pytest.mark.parametrize(
    ("patterns", "expected"), [(["example.com", ".example.com"], False), (["*"], True)]
)
async def test_missing_origin_is_refused_unless_everything_is_allowed(
    patterns: list[str], expected: bool
) -> None:
    connected, _ = await handshake(OriginValidator(ScopeRecorder(), patterns), [])
    assert connected is expected


async def test_repeated_origin_headers_are_refused() -> None:
    app = OriginValidator(ScopeRecorder(), ["example.com"])
    headers = [origin(b"http://example.com"), origin(b"http://example.com")]
    assert await handshake(app, headers) == (False, REFUSED_CLOSE_CODE)


async def test_http_scopes_pass_through() -> None:
    app = OriginValidator(ScopeRecorder(), ["example.com"])
    response = await HttpCommunicator(
        app, "GET", "/", headers=[origin(b"http://evil.example")]
    ).get_response()
    assert response["status"] == 204


async def test_client_gone_before_the_handshake_gets_nothing() -> None:
    app = OriginValidator(ScopeRecorder(), ["example.com"])
    scope = {"type": "websocket", "path": "/ws/", "headers": [origin(b"http://evil.example")]}
    async with ApplicationCommunicator(app, scope) as communicator:
        await communicator.send_input({"type": "websocket.disconnect", "code": 1001})
        await communicator.wait()
        assert communicator.output_queue.empty()


async def test_websocket_denier_refuses_every_handshake() -> None:
    communicator = WebsocketCommunicator(WebsocketDenier.as_asgi(), "/ws/")
    connected, _ = await communicator.connect()
    assert not connected


# -- from ALLOWED_HOSTS ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"http://testserver", True),
        (b"https://localhost:8000", True),
        (b"http://127.0.0.1:8000", True),
        (b"http://sub.localhost", False),
        (b"http://evil.example", False),
    ],
)
async def test_allowed_hosts_are_origin_patterns(
    settings: Any, value: bytes, expected: bool
) -> None:
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
    app = AllowedHostsOriginValidator(ScopeRecorder())
    connected, _ = await handshake(app, [origin(value)])
    assert connected is expected


async def test_changed_allowed_hosts_apply_at_once(settings: Any) -> None:
    app = AllowedHostsOriginValidator(ScopeRecorder())
    settings.ALLOWED_HOSTS = [".example.com"]
    assert (await handshake(app, [origin(b"https://a.example.com")]))[0]
    assert not (await handshake(app, [origin(b"http://testserver")]))[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"http://localhost:8000", True),
        (b"http://app.localhost:3000", True),
        (b"http://127.0.0.1:8000", True),
        (b"http://[::1]:8000", True),
        (b"http://example.com", False),
    ],
)
async def test_debug_with_empty_allowed_hosts_allows_localhost(
    settings: Any, value: bytes, expected: bool
) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []
    connected, _ = await handshake(AllowedHostsOriginValidator(ScopeRecorder()), [origin(value)])
    assert connected is expected


async def test_empty_allowed_hosts_without_debug_refuses_everything(settings: Any) -> None:
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = []
    app = AllowedHostsOriginValidator(ScopeRecorder())
    assert not (await handshake(app, [origin(b"http://localhost:8000")]))[0]


async def test_star_in_allowed_hosts_allows_everything(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    app = AllowedHostsOriginValidator(ScopeRecorder())
    assert (await handshake(app, [origin(b"http://anything.example")]))[0]
    assert (await handshake(app, []))[0]


async def test_unusable_allowed_hosts_entry_is_a_configuration_error(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["example.com/path"]
    communicator = WebsocketCommunicator(AllowedHostsOriginValidator(ScopeRecorder()), "/ws/")
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS"):
        await communicator.connect()


# -- cross-site WebSocket hijacking ------------------------------------------------------------


class Counting:
    """Counts the handshakes that get past the validator."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.inner(scope, receive, send)


@pytest.mark.django_db(transaction=True)
async def test_cookie_authenticated_socket_from_a_foreign_origin_is_refused(
    async_client: AsyncClient,
) -> None:
    await async_client.aforce_login(await User.objects.acreate(username="alice"))
    key = async_client.cookies[django_settings.SESSION_COOKIE_NAME].value
    inner = Counting(AuthMiddlewareStack(URLRouter([path("ws/who/", AsyncWhoAmI.as_asgi())])))
    app = AllowedHostsOriginValidator(inner)

    # A page on another site opens the socket; the browser attaches alice's cookie anyway.
    hijack = WebsocketCommunicator(
        app, "/ws/who/", headers=[session_cookie(key), origin(b"http://evil.example")]
    )
    assert await hijack.connect() == (False, REFUSED_CLOSE_CODE)
    await hijack.wait()
    assert inner.calls == 0

    own_page = WebsocketCommunicator(
        app, "/ws/who/", headers=[session_cookie(key), origin(b"http://testserver")]
    )
    connected, _ = await own_page.connect()
    assert connected
    assert await own_page.receive_from() == "alice"
    await own_page.disconnect()
    assert inner.calls == 1
