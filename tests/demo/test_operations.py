"""The operations page for staff (``/ops/``, operations.py): who may see it, and what its data
holds about the live sockets, the rooms' presence and the layer's counters."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client

from channelworks.demo.chat.models import Room
from tests.demo.support import open_socket
from tests.demo.test_topics import join, next_event

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
    bob = await open_socket("/ws/chat/general/", bob_session)
    assert (await bob.receive_json_from())["type"] == "resumed"
    await bob.send_json_to({"type": "message", "text": "hello"})
    assert (await bob.receive_json_from())["text"] == "hello"

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
    (chat,) = [c for c in data["connections"] if c["user"] == "bob"]
    assert (chat["route"], chat["path"]) == ("chat", "/ws/chat/general/")
    assert chat["frames_in"] == 1  # the message
    assert chat["frames_out"] == 2  # "resumed", then the message back
    assert {"id", "since", "pid"} <= set(chat)

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
