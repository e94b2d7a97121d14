"""A Channels 4 project served by daphne's command line, through ``channelworks.compat``.

The project is written as Channels' documentation writes one: ``"daphne"`` first in
``INSTALLED_APPS`` and ``"channels"`` after it, ``ASGI_APPLICATION``, an ``asgi.py`` that
builds a ``ProtocolTypeRouter`` from ``channels`` imports, the in-memory layer, and one extra
line, ``channelworks.compat.install()``, at the top of ``asgi.py`` and ``manage.py``. It is
served by ``daphne mysite.asgi:application`` (the console script, as a user types it) and by
``manage.py runserver``, which is daphne's own command when daphne is listed first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live import TIMEOUT, LiveServer, http_request, recv_text, ws_connect
from tests.server.test_other_servers import free_port, wait_listening

PROJECT = {
    "manage.py": """
import os
import sys

import channelworks.compat

channelworks.compat.install()

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
""",
    "mysite/__init__.py": "",
    "mysite/settings.py": """
SECRET_KEY = "not-a-secret-daphne-test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "mysite",
]
ROOT_URLCONF = "mysite.urls"
ASGI_APPLICATION = "mysite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
DATABASES = {}
USE_TZ = True
""",
    "mysite/urls.py": """
from django.http import HttpResponse
from django.urls import path


def hello(request):
    return HttpResponse(f"hello from {request.path}")


urlpatterns = [path("hello/", hello)]
""",
    "mysite/consumers.py": """
from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncJsonWebsocketConsumer, WebsocketConsumer


class Echo(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data)


class Room(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = "room_" + self.scope["url_route"]["kwargs"]["name"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"joined": self.group})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content):
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "text": content["text"]}
        )

    async def chat_message(self, event):
        await self.send_json({"text": event["text"]})
""",
    "mysite/asgi.py": """
import os

import channelworks.compat

channelworks.compat.install()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

django_asgi_app = get_asgi_application()

from mysite import consumers  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/echo/", consumers.Echo.as_asgi()),
                path("ws/room/<name>/", consumers.Room.as_asgi()),
            ]
        ),
    }
)
""",
}


def write_project(root: Path) -> Path:
    for name, text in PROJECT.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.lstrip())
    return root


def daphne_script() -> str:
    """The ``daphne`` console script of this environment, as a user would type it."""
    script = Path(sys.executable).parent / "daphne"
    found = str(script) if script.exists() else shutil.which("daphne")
    if found is None:
        pytest.skip("the daphne command is not installed")
    return found


def command(kind: str, port: int) -> list[str]:
    if kind == "daphne":
        return [daphne_script(), "-b", "127.0.0.1", "-p", str(port), "mysite.asgi:application"]
    return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]


@pytest.fixture(scope="module", params=["daphne", "runserver"])
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The project served by ``daphne mysite.asgi:application`` or ``manage.py runserver``."""
    root = write_project(tmp_path_factory.mktemp("project"))
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        # the project's own settings, not the ones this test run may have in its environment
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        proc = subprocess.Popen(
            command(request.param, port), cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_listening(proc, port, log)
            if request.param == "runserver":  # daphne's command, not channelworks' uvicorn one
                assert "Daphne" in log.read_text(), log.read_text()
            yield LiveServer("127.0.0.1", port)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_django_view_over_http(project: LiveServer) -> None:
    response = http_request(project, "GET", "/hello/")
    assert response.status == 200
    assert response.body == b"hello from /hello/"


async def test_websocket_echo(project: LiveServer) -> None:
    async with ws_connect(project.ws("/ws/echo/")) as ws:
        await ws.send("ping")
        assert await recv_text(ws) == "ping"


async def test_group_message_reaches_every_member(project: LiveServer) -> None:
    async with (
        ws_connect(project.ws("/ws/room/lobby/")) as a,
        ws_connect(project.ws("/ws/room/lobby/")) as b,
        ws_connect(project.ws("/ws/room/other/")) as c,
    ):
        for ws in (a, b, c):
            assert "joined" in await recv_text(ws)
        await a.send('{"text": "hi all"}')
        assert await recv_text(a) == '{"text": "hi all"}'
        assert await recv_text(b) == '{"text": "hi all"}'
        await c.send('{"text": "elsewhere"}')
        assert await recv_text(c) == '{"text": "elsewhere"}'
        await b.send('{"text": "again"}')  # a got nothing from room "other" before this
        assert await recv_text(a) == '{"text": "again"}'
