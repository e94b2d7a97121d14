"""The operations page for staff (``/ops/``, operations.py): who may see it, and what its data
holds about the live sockets, the rooms' presence and the layer's counters."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client
from websockets.sync.client import connect
from websockets.typing import Origin

from channelworks.demo.chat.models import Room
from tests.demo.server import DemoServer, login
from tests.demo.support import open_socket
from tests.demo.test_topics import join, next_event
from tests.layers.backends import REDIS_URL, redis_reachable, require_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


@pytest.fixture
def staff(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("sam", password="pw", is_staff=True)


def test_staff_see_the_page_and_its_link_in_the_header(staff: User) -> None:
    client = Client()
    client.force_login(staff)
    response = client.get("/ops/")
    assert response.status_code == 200
    assert b'id="connection-count"' in response.content
    assert b'href="/ops/"' in client.get("/").content
    # the admin live view it links to, with its close buttons, is mounted
    assert b'href="/admin/channelworks/connections/"' in response.content
    assert client.get("/admin/channelworks/connections/").status_code == 200


def test_others_are_sent_to_log_in_or_refused(bob: User) -> None:
    anonymous = Client()
    response = anonymous.get("/ops/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/ops/"
    assert anonymous.get("/ops/data/").status_code == 403

    client = Client()
    client.force_login(bob)
    refused = client.get("/ops/")
    assert refused.status_code == 403
    assert b"Not allowed" in refused.content  # the site's own 403 page
    assert client.get("/ops/data/").json() == {"error": "staff only"}
    assert client.get("/ops/data/").status_code == 403
    assert b'href="/ops/"' not in client.get("/").content  # no link for them


def test_an_inactive_staff_user_is_refused(staff: User) -> None:
    client = Client()
    client.force_login(staff)
    staff.is_active = False
    staff.save()
    assert client.get("/ops/data/").status_code == 403


async def test_the_data_lists_live_sockets_room_presence_and_counters(
    staff: User, alice_session: str, bob_session: str
) -> None:
    await Room.objects.acreate(name="General", slug="general")
    await Room.objects.acreate(name="Backstage", slug="backstage", is_private=True)
    tabs = [await open_socket("/ws/topics/", alice_session) for _ in range(2)]
    for socket in tabs:
        assert (await join(socket, "chat:general"))["status"] == "ok"
    await next_event(tabs[1], "presence_state")
    bob = await open_socket("/ws/topics/", bob_session)
    await bob.send_json_to(["1", "1", "activity:general", "join", {"params": {}}])
    assert (await next_event(bob, "reply"))["status"] == "ok"
    await bob.send_json_to(["1", "2", "activity:general", "unread", {}])
    assert (await next_event(bob, "reply"))["status"] == "ok"

    client = AsyncClient()
    await client.aforce_login(staff)
    response = await client.get("/ops/data/")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data: dict[str, Any] = response.json()

    assert data["layer"] == "InMemoryChannelLayer"
    assert data["processes"] == 1
    assert data["connections_total"] == len(data["connections"]) >= 3
    alice_rows = [c for c in data["connections"] if c["user"] == "alice"]
    assert [(c["route"], c["path"]) for c in alice_rows] == [("topics", "/ws/topics/")] * 2
    assert all(c["frames_in"] >= 1 and c["frames_out"] >= 1 for c in alice_rows)  # the join
    (bobs,) = [c for c in data["connections"] if c["user"] == "bob"]
    assert (bobs["route"], bobs["path"]) == ("topics", "/ws/topics/")
    assert bobs["frames_in"] == 2  # the join, the push
    assert bobs["frames_out"] == 2  # their replies
    assert {"id", "since", "pid"} <= set(bobs)

    rooms = {room["slug"]: room for room in data["rooms"]}
    assert rooms["general"]["present"] == [{"user": "alice", "tabs": 2}]
    assert rooms["backstage"] == {
        "slug": "backstage",
        "name": "Backstage",
        "private": True,
        "present": [],
    }
    assert {"group_full", "expired", "presence_tracks"} <= set(data["counters"])
    assert data["counters"]["presence_tracks"] >= 2

    await tabs[0].disconnect()
    after = (await client.get("/ops/data/")).json()
    assert after["connections_total"] == data["connections_total"] - 1
    rooms = {room["slug"]: room for room in after["rooms"]}
    assert rooms["general"]["present"] == [{"user": "alice", "tabs": 1}]
    for socket in (tabs[1], bob):
        await socket.disconnect()


@pytest.mark.services
def test_with_redis_the_data_holds_every_server_process(tmp_path: Path) -> None:
    """Two processes on the Redis layer: the page's data gathers both, and the rooms'
    presence comes from Redis. Another demo (another data folder) on the same Redis is
    another site: neither its processes nor its room's presence show."""
    require_service("Redis", redis_reachable())
    other = DemoServer(tmp_path / "other", extra=["--redis", REDIS_URL])
    server = DemoServer(tmp_path / "demo", extra=["--redis", REDIS_URL, "--workers", "2"])
    url = server.start()
    try:
        other_url = other.start()
        cookies = {name: f"sessionid={login(url, name)}" for name in ("alice", "bob")}
        cookies["carol"] = f"sessionid={login(other_url, 'carol')}"
        with contextlib.ExitStack() as stack:

            def socket(path: str, name: str, site: str = url) -> Any:
                return stack.enter_context(
                    connect(
                        site.replace("http://", "ws://") + path,
                        origin=Origin(site.rstrip("/")),
                        additional_headers={"Cookie": cookies[name]},
                        open_timeout=10,
                    )
                )

            elsewhere = socket("ws/topics/", "carol", other_url)
            elsewhere.send(json.dumps(["1", "1", "chat:general", "join", {"params": {}}]))
            assert json.loads(elsewhere.recv(timeout=10))[4]["status"] == "ok"

            bobs = [socket("ws/topics/", "bob") for _ in range(5)]  # both processes get some
            for page in bobs:
                page.send(json.dumps(["1", "1", "activity:general", "join", {"params": {}}]))
                assert json.loads(page.recv(timeout=10))[4]["status"] == "ok"
            topics = socket("ws/topics/", "alice")
            topics.send(json.dumps(["1", "1", "chat:general", "join", {"params": {}}]))
            assert json.loads(topics.recv(timeout=10))[4]["status"] == "ok"

            asked = urllib.request.Request(url + "ops/data/", headers={"Cookie": cookies["alice"]})
            with urllib.request.urlopen(asked, timeout=10) as response:
                data = json.load(response)
    finally:
        assert server.stop() == 0, server.output()
        if other.process is not None:
            assert other.stop() == 0, other.output()
    assert data["layer"] == "RedisChannelLayer"
    assert data["connections_total"] == len(data["connections"]) == 6
    assert sorted((c["user"], c["route"]) for c in data["connections"]) == [
        ("alice", "topics"),
        *[("bob", "topics")] * 5,
    ]
    # every process holding a socket answered (a process answers once it served one)
    assert 1 <= len({c["pid"] for c in data["connections"]}) == data["processes"] <= 2
    rooms = {room["slug"]: room["present"] for room in data["rooms"]}
    assert rooms["general"] == [{"user": "alice", "tabs": 1}]
    assert "redis_errors" in data["counters"]
