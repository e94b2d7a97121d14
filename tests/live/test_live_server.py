"""``ChannelsLiveServerTestCase`` collected by pytest-django: a real uvicorn, real clients.

The suite's test database is a SQLite file, so the server thread opens its own connections;
``test_memory_database`` covers in-memory SQLite, where the server shares the test's.
"""

from __future__ import annotations

import socket
import unittest
import urllib.parse
from pathlib import Path
from typing import ClassVar

from asgiref.sync import async_to_sync
from django.db import connections
from django.test import modify_settings, override_settings

from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import live
from tests.djangoapp.models import Note
from tests.live.base import LiveTestCase
from tests.live.clients import TIMEOUT, http, recv_json, websocket

STATIC_DIR = Path(__file__).parent / "static"


class LiveServerTests(LiveTestCase):
    port_in_setup: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # The address is known, and accepting, before the first test runs.
        url = urllib.parse.urlsplit(cls.live_server_url)
        if url.scheme != "http" or url.hostname != "127.0.0.1" or not url.port:
            raise AssertionError(f"unexpected live_server_url {cls.live_server_url!r}")
        socket.create_connection(("127.0.0.1", url.port), timeout=TIMEOUT).close()
        cls.port_in_setup = url.port

    def test_urls_carry_the_port_known_in_setupclass(self) -> None:
        assert self.live_server_url == f"http://127.0.0.1:{self.port_in_setup}"
        assert self.live_server_ws_url == f"ws://127.0.0.1:{self.port_in_setup}"

    def test_http_get_of_a_django_view(self) -> None:
        assert http(f"{self.live_server_url}/whoami/") == (200, "anonymous")

    def test_unknown_http_path_is_djangos_404(self) -> None:
        status, _ = http(f"{self.live_server_url}/nowhere/")
        assert status == 404

    def test_websocket_echo(self) -> None:
        with websocket(f"{self.live_server_ws_url}/ws/echo/") as ws:
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "hello"
            ws.send(b"\x00bytes")
            assert ws.recv(timeout=TIMEOUT) == b"\x00bytes"

    def test_the_server_and_the_test_share_one_layer_instance(self) -> None:
        layer = self.layer
        assert isinstance(layer, InMemoryChannelLayer)
        with websocket(f"{self.live_server_ws_url}/ws/notes/") as ws:
            # The consumer joined "notes" in the server thread, on this very instance.
            async_to_sync(layer.group_send)("notes", {"type": "note.saved", "text": "group"})
            assert recv_json(ws) == {"saved": "group"}
            ws.send('{"action": "name"}')
            channel = recv_json(ws)["channel"]
            async_to_sync(layer.send)(channel, {"type": "note.saved", "text": "channel"})
            assert recv_json(ws) == {"saved": "channel"}

    def test_model_save_in_the_test_reaches_a_connected_socket(self) -> None:
        with websocket(f"{self.live_server_ws_url}/ws/notes/") as ws:
            Note.objects.create(text="hi")  # post_save -> async_to_sync(group_send)
            assert recv_json(ws) == {"saved": "hi"}

    def test_model_save_in_a_view_reaches_a_connected_socket(self) -> None:
        with websocket(f"{self.live_server_ws_url}/ws/notes/") as ws:
            status, _ = http(f"{self.live_server_url}/notes/", {"text": "from a view"})
            assert status == 201
            assert recv_json(ws) == {"saved": "from a view"}
        assert list(Note.objects.values_list("text", flat=True)) == ["from a view"]

    def test_a_view_sees_rows_committed_by_the_test(self) -> None:
        Note.objects.create(text="one")
        Note.objects.create(text="two")
        assert http(f"{self.live_server_url}/notes/") == (200, "one\ntwo")

    def test_with_a_file_database_the_server_opens_its_own_connection(self) -> None:
        assert not connections["default"].is_in_memory_db()  # type: ignore[attr-defined]
        status, body = http(f"{self.live_server_url}/connection/")
        assert status == 200
        assert body != str(id(connections["default"]))

    def test_database_sync_to_async_in_a_consumer_sees_rows_of_the_test(self) -> None:
        Note.objects.create(text="seen")
        with websocket(f"{self.live_server_ws_url}/ws/notes/") as ws:
            ws.send('{"action": "list"}')
            assert recv_json(ws) == {"notes": ["seen"]}

    def test_a_sync_consumer_sees_rows_committed_by_the_test(self) -> None:
        Note.objects.create(text="committed")
        with websocket(f"{self.live_server_ws_url}/ws/sync-notes/") as ws:
            ws.send('{"action": "list"}')
            assert recv_json(ws) == {"notes": ["committed"]}

    def test_each_test_starts_with_an_empty_table(self) -> None:
        # TransactionTestCase flushes between tests; the server sees the same empty table.
        assert http(f"{self.live_server_url}/notes/") == (200, "")


@override_settings(ASGI_APPLICATION="tests.live.asgi.application")
class DefaultApplicationTests(live.ChannelworksLiveServerTestCase):
    """No ``application`` attribute: ``ASGI_APPLICATION`` is read when the class is set up."""

    def test_serves_asgi_application_from_settings(self) -> None:
        with websocket(f"{self.live_server_ws_url}/ws/echo/") as ws:
            ws.send("from settings")
            assert ws.recv(timeout=TIMEOUT) == "from settings"

    def test_alias_is_the_same_class(self) -> None:
        assert live.ChannelworksLiveServerTestCase is live.ChannelsLiveServerTestCase


@modify_settings(INSTALLED_APPS={"append": "django.contrib.staticfiles"})
@override_settings(STATIC_URL="/static/", STATICFILES_DIRS=[STATIC_DIR])
class StaticFilesTests(live.ChannelsLiveServerTestCase):
    application = "tests.live.asgi.application"

    def test_static_files_are_served(self) -> None:
        status, body = http(f"{self.live_server_url}/static/live.txt")
        assert (status, body) == (200, "served by the live server\n")

    def test_other_paths_and_websockets_reach_the_application(self) -> None:
        assert http(f"{self.live_server_url}/whoami/") == (200, "anonymous")
        with websocket(f"{self.live_server_ws_url}/ws/echo/") as ws:
            ws.send("behind static")
            assert ws.recv(timeout=TIMEOUT) == "behind static"


@modify_settings(INSTALLED_APPS={"append": "django.contrib.staticfiles"})
@override_settings(STATIC_URL="/static/", STATICFILES_DIRS=[STATIC_DIR])
class StaticFilesOffTests(live.ChannelsLiveServerTestCase):
    application = "tests.live.asgi.application"
    serve_static = False

    def test_static_files_are_left_to_the_application(self) -> None:
        status, _ = http(f"{self.live_server_url}/static/live.txt")
        assert status == 404


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback on this machine")
class IPv6Tests(live.ChannelsLiveServerTestCase):
    application = "tests.live.asgi.application"
    host = "::1"

    def test_urls_bracket_the_address_and_django_accepts_the_host(self) -> None:
        assert self.live_server_url.startswith("http://[::1]:")
        assert http(f"{self.live_server_url}/whoami/") == (200, "anonymous")
        with websocket(f"{self.live_server_ws_url}/ws/echo/") as ws:
            ws.send("six")
            assert ws.recv(timeout=TIMEOUT) == "six"


class HostNameTests(live.ChannelsLiveServerTestCase):
    application = "tests.live.asgi.application"
    host = "localhost"

    def test_urls_use_the_host_name(self) -> None:
        # ALLOWED_HOSTS has "localhost" already; the name, not the address, is in the URL.
        assert self.live_server_url.startswith("http://localhost:")
        assert http(f"{self.live_server_url}/whoami/") == (200, "anonymous")
