"""``channelworks demo``: arguments, settings, seeding, and the real command end to end."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from websockets.sync.client import connect
from websockets.typing import Origin

from channelworks.cli import main
from channelworks.demo import command
from channelworks.demo.blog.models import Entry
from channelworks.demo.chat.models import Message, Room
from channelworks.demo.seed import DEMO_PASSWORD, seed
from channelworks.demo.settings import secret_key
from channelworks.demo.social.models import Post
from tests.demo.server import DemoServer, login
from tests.layers.backends import REDIS_URL, redis_reachable, require_service


def test_workers_without_redis_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--workers", "2"]) == 2
    assert "--workers needs --redis" in capsys.readouterr().err


def test_ctrl_c_while_preparing_the_data_stops_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(data: Path, args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "prepare", interrupted)
    assert main(["demo", "--data", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "Interrupted.\n"


def test_a_url_that_is_not_redis_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--redis", "http://127.0.0.1:6379"]) == 2
    assert "redis:// URL" in capsys.readouterr().err


def test_help_lists_the_demo_without_setting_django_up() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from channelworks.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(json.dumps(['demo' in out.getvalue(), 'django' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == [True, False]


def test_the_secret_key_is_made_once_and_kept(tmp_path: Path) -> None:
    key = secret_key(tmp_path / "data")
    assert len(key) >= 50
    assert secret_key(tmp_path / "data") == key
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_seeding_twice_adds_nothing_and_keeps_passwords() -> None:
    seed()
    counts = [model.objects.count() for model in (User, Room, Message, Post, Entry)]
    alice = User.objects.get(username="alice")
    alice.set_password("changed")
    alice.save()
    seed()
    assert [model.objects.count() for model in (User, Room, Message, Post, Entry)] == counts
    assert User.objects.get(username="alice").check_password("changed")
    assert User.objects.get(username="bob").check_password(DEMO_PASSWORD)
    assert counts[0] == 3


# -- the real command --------------------------------------------------------------------------


def echo(url: str, text: str) -> str:
    ws_url = url.replace("http://", "ws://") + "ws/echo/"
    with connect(ws_url, origin=Origin(url.rstrip("/")), open_timeout=10) as socket:
        socket.send(text)
        answer = socket.recv(timeout=10)
    assert isinstance(answer, str)
    return answer


def test_the_command_serves_stops_cleanly_and_reuses_its_data(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    server = DemoServer(data)
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"Real-time Django" in response.read()
        with urllib.request.urlopen(url + "static/channelworks/client.js", timeout=10) as response:
            assert b"Channelworks" in response.read()  # the pages' client, from the package
        assert echo(url, "hello") == "hello"
    finally:
        assert server.stop() == 0, server.output()
    assert "Users (password 'channelworks'): alice, bob, carol" in server.output()
    assert "Stopped." in server.output()
    assert "Traceback" not in server.output()
    assert (data / "db.sqlite3").exists()

    again = DemoServer(data, port=server.port)
    again.start()
    login(again.url, "alice")  # the same users, with the same password
    assert again.stop() == 0, again.output()
    with sqlite3.connect(data / "db.sqlite3") as db:
        assert db.execute("select count(*) from auth_user").fetchone() == (3,)
        assert db.execute("select count(*) from chat_room").fetchone() == (3,)


def test_sigterm_stops_cleanly_too(tmp_path: Path) -> None:
    import signal

    server = DemoServer(tmp_path / "demo")
    server.start()
    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert "Traceback" not in server.output()


@pytest.mark.services
def test_with_redis_the_server_processes_see_each_others_messages(tmp_path: Path) -> None:
    require_service("Redis", redis_reachable())
    server = DemoServer(tmp_path / "demo", extra=["--redis", REDIS_URL, "--workers", "2"])
    url = server.start()
    try:
        ws_url = url.replace("http://", "ws://") + "ws/topics/"
        with contextlib.ExitStack() as stack:
            sockets = [
                stack.enter_context(
                    connect(
                        ws_url,
                        origin=Origin(url.rstrip("/")),
                        additional_headers={"Cookie": f"sessionid={login(url, name)}"},
                        open_timeout=10,
                    )
                )
                for name in ("alice", "bob") * 3  # six sockets: both processes get some
            ]
            for socket in sockets:
                socket.send(json.dumps(["1", "1", "chat:general", "join", {"params": {}}]))
                assert json.loads(socket.recv(timeout=10))[4]["status"] == "ok"
            message = {"text": "across processes"}
            sockets[0].send(json.dumps(["1", "2", "chat:general", "message", message]))
            for socket in sockets:
                frame = json.loads(socket.recv(timeout=10))
                while frame[3] != "message":  # presence and the reply come and go
                    frame = json.loads(socket.recv(timeout=10))
                assert (frame[4]["author"], frame[4]["text"]) == ("alice", "across processes")
    finally:
        assert server.stop() == 0, server.output()
    assert "Redis at" in server.output()


def test_a_port_that_is_not_a_working_redis_is_refused_at_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A listener that takes the connection and never answers (a paused Redis, another
    # service): the TCP connect succeeds, the layer does not work. The demo must not serve.
    monkeypatch.setattr(command, "PROBE_TIMEOUT", 1.0)
    monkeypatch.setattr(command, "prepare", lambda data, args: pytest.fail("prepared"))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        assert main(["demo", "--redis", url, "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"Redis at {url} did not answer within 1 s" in err


def test_a_refused_redis_port_is_refused_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        assert main(["demo", "--redis", f"redis://127.0.0.1:{port}/0"]) == 2
    assert "cannot reach Redis at" in capsys.readouterr().err
