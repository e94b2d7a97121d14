"""``manage.py runserver``: ours over Django's, and a real server in a subprocess.

The subprocesses listen on 127.0.0.1 port 0: the system picks a free port and the banner
names it, so no two tests can race for a port.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management import CommandError, call_command, get_commands
from django.test import override_settings
from websockets.sync.client import connect

from channelworks.management.commands.runserver import Command
from tests.commands.processes import START_TIMEOUT, TIMEOUT, Process, django_command
from tests.commands.project.apps import WATCH_ENV

BANNER = r"Starting ASGI/channelworks development server at http://127\.0\.0\.1:(\d+)/"
BASE_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
STATIC = "django.contrib.staticfiles"


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        status: int = response.status
        return status, response.read()


def wait_for_banner(server: Process, timeout: float = START_TIMEOUT) -> int:
    return int(server.wait_for(BANNER, timeout).group(1))


# -- which runserver Django runs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed", "owner"),
    [
        (["channelworks"], "channelworks"),
        (["channelworks", STATIC], "channelworks"),
        # Django takes the command of the app listed first: staticfiles here.
        ([STATIC, "channelworks"], STATIC),
        ([], "django.core"),
    ],
)
def test_the_first_installed_app_with_a_runserver_wins(installed: list[str], owner: str) -> None:
    with override_settings(INSTALLED_APPS=BASE_APPS + installed):
        assert get_commands()["runserver"] == owner
    assert get_commands()["runserver"] == "channelworks"  # tests.settings installs it


# -- arguments, in-process ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addrport", "url"),
    [
        (None, "http://127.0.0.1:8000/"),
        ("8001", "http://127.0.0.1:8001/"),
        ("0.0.0.0:8001", "http://0.0.0.0:8001/"),
        ("0:8002", "http://0.0.0.0:8002/"),
        ("[::1]:8000", "http://[::1]:8000/"),
        ("localhost:8003", "http://localhost:8003/"),
    ],
)
def test_addrport_is_read_like_django(
    monkeypatch: pytest.MonkeyPatch, addrport: str | None, url: str
) -> None:
    ran: list[Command] = []
    monkeypatch.setattr(Command, "run", lambda self, **options: ran.append(self))
    call_command("runserver", *([addrport] if addrport else []), "--noreload")
    [command] = ran
    assert command.server_url(int(command.port)) == url


def test_a_bad_addrport_is_refused() -> None:
    with pytest.raises(CommandError, match="not a valid port number"):
        call_command("runserver", "nowhere:port")


def options(*args: str) -> dict[str, Any]:
    """The parsed options of ``runserver *args``, as ``handle`` gets them."""
    command = Command()
    return vars(command.create_parser("manage.py", "runserver").parse_args(list(args)))


@pytest.mark.parametrize(
    ("debug", "args", "served"),
    [
        (True, [], True),
        (False, [], False),
        (False, ["--insecure"], True),
        (True, ["--nostatic"], False),
    ],
)
def test_static_files_are_served_under_debug_unless_told_otherwise(
    debug: bool, args: list[str], served: bool
) -> None:
    settings = {
        "INSTALLED_APPS": [*BASE_APPS, "channelworks", STATIC],
        "DEBUG": debug,
        "STATIC_URL": "static/",
        "ASGI_APPLICATION": "tests.commands.project.asgi.application",
    }
    with override_settings(**settings):
        handler = Command().get_asgi_handler(**options(*args))
    assert isinstance(handler, ASGIStaticFilesHandler) is served


def test_without_staticfiles_there_are_no_static_options() -> None:
    with pytest.raises(CommandError, match="--nostatic"):
        options("--nostatic")


# -- a real server -----------------------------------------------------------------------------


def test_serves_django_websocket_and_static_files_on_one_port() -> None:
    with django_command("runserver", "--noreload", "127.0.0.1:0") as server:
        server.wait_for(r"Performing system checks", START_TIMEOUT)
        server.wait_for(r"Django version \d+\.\d+.*, using settings 'tests\.commands\.project")
        port = wait_for_banner(server)
        server.wait_for(r"Quit the server with CONTROL-C\.")
        base = f"http://127.0.0.1:{port}"

        assert get(f"{base}/hello/") == (200, b"hello from django")
        assert get(f"{base}/static/commands/hello.txt") == (200, b"hello from a static file\n")
        with connect(f"ws://127.0.0.1:{port}/ws/echo/", open_timeout=TIMEOUT) as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
            ws.send(b"\x00\x01")
            assert ws.recv(timeout=TIMEOUT) == b"\x00\x01"

        server.send_signal(signal.SIGTERM)
        assert server.wait() == 0


def test_control_c_stops_the_server_with_status_0() -> None:
    with django_command("runserver", "--noreload", "127.0.0.1:0") as server:
        wait_for_banner(server)
        server.send_signal(signal.SIGINT)
        assert server.wait() == 0


def test_a_port_in_use_is_an_error_with_status_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with django_command("runserver", "--noreload", f"127.0.0.1:{port}") as server:
            assert server.wait(START_TIMEOUT) == 1
            assert f"port {port} on 127.0.0.1 is already in use" in server.drain()


def test_noasgi_runs_djangos_wsgi_server_with_static_files() -> None:
    with django_command("runserver", "--noreload", "--noasgi", "127.0.0.1:0") as server:
        match = server.wait_for(
            r"Starting development server at http://127\.0\.0\.1:(\d+)/", START_TIMEOUT
        )
        base = f"http://127.0.0.1:{match.group(1)}"
        assert get(f"{base}/hello/") == (200, b"hello from django")
        assert get(f"{base}/static/commands/hello.txt") == (200, b"hello from a static file\n")
        assert "ASGI/channelworks" not in server.drain()


def test_the_autoreloader_restarts_the_server_on_a_code_change(tmp_path: Path) -> None:
    watched = tmp_path / "watched.py"  # the project's app adds it to the reloader's files
    watched.write_text("")
    with django_command("runserver", "127.0.0.1:0", env={WATCH_ENV: str(watched)}) as server:
        first = wait_for_banner(server)
        assert get(f"http://127.0.0.1:{first}/hello/")[1] == b"hello from django"
        # The reloader notices a newer mtime; touch until it has (its first look at the file
        # may come after our first touch), bounded by START_TIMEOUT.
        deadline = time.monotonic() + START_TIMEOUT
        for attempt in itertools.count(1):
            bump = time.time() + 10 * attempt  # always newer than the last touch
            os.utime(watched, (bump, bump))
            try:
                second = wait_for_banner(server, timeout=1.5)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
        assert f"{watched} changed, reloading" in server.drain()
        assert get(f"http://127.0.0.1:{second}/hello/")[1] == b"hello from django"
        server.send_signal(signal.SIGTERM)
        assert server.wait() == 0
