"""The site's topics socket: who may join a room's topic, presence per user, typing, a room's
activity, the ``online`` topic and the posts' (chat/topics.py, social/topics.py); the rooms'
messages are in test_chat.py, the notifications in test_social.py, the blog in test_blog.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from channelworks.db import database_sync_to_async
from channelworks.demo.chat.models import Room
from channelworks.demo.social.models import Post
from channelworks.testing import WebsocketCommunicator
from tests.demo.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


@pytest.fixture
def rooms(alice: User) -> None:
    Room.objects.create(name="General", slug="general")
    backstage = Room.objects.create(name="Backstage", slug="backstage", is_private=True)
    backstage.members.add(alice)


async def join(socket: WebsocketCommunicator, topic: str, ref: str = "1") -> dict[str, Any]:
    """Join ``topic``; the reply's payload."""
    await socket.send_json_to([ref, ref, topic, "join", {"params": {}}])
    frame = await socket.receive_json_from()
    assert frame[:4] == [ref, ref, topic, "reply"], frame
    payload: dict[str, Any] = frame[4]
    return payload


async def next_event(socket: WebsocketCommunicator, event: str) -> dict[str, Any]:
    """The payload of the next push of ``event`` (other frames before it are skipped)."""
    while True:
        frame = await socket.receive_json_from()
        if frame[3] == event:
            payload: dict[str, Any] = frame[4]
            return payload


@pytest.mark.usefixtures("rooms")
@pytest.mark.parametrize(
    ("who", "topic", "reason"),
    [
        (None, "chat:general", "login_required"),
        (None, "online", "login_required"),
        ("carol", "chat:backstage", "not_found"),  # private, carol is no member
        ("carol", "chat:nowhere", "not_found"),
    ],
)
async def test_who_may_not_join_is_refused(
    who: str | None, topic: str, reason: str, carol_session: str
) -> None:
    socket = await open_socket("/ws/topics/", carol_session if who else None)
    reply = await join(socket, topic)
    assert reply == {"status": "error", "response": {"reason": reason}}
    await socket.disconnect()


@pytest.mark.usefixtures("rooms")
async def test_a_room_tracks_each_user_once_with_a_meta_per_tab_and_relays_typing(
    alice_session: str, bob_session: str
) -> None:
    tabs = [await open_socket("/ws/topics/", alice_session) for _ in range(2)]
    bob = await open_socket("/ws/topics/", bob_session)
    for socket in (*tabs, bob):
        assert (await join(socket, "chat:general"))["status"] == "ok"
    state = await next_event(bob, "presence_state")
    assert sorted(state) == ["alice", "bob"]
    assert len(state["alice"]["metas"]) == 2
    assert set(state["alice"]["metas"][0]) >= {"avatar", "online_at", "phx_ref"}

    await bob.send_json_to(["1", "2", "chat:general", "typing", {}])
    for socket in tabs:
        frame = await socket.receive_json_from()
        while frame[3] != "typing":
            frame = await socket.receive_json_from()
        assert frame[4:] == [{"user": "bob"}]  # no position: typing is not in the log
    for socket in (*tabs, bob):
        await socket.disconnect()


async def test_the_online_topic_tracks_logged_in_users(alice_session: str) -> None:
    socket = await open_socket("/ws/topics/", alice_session)
    assert (await join(socket, "online"))["status"] == "ok"
    assert list(await next_event(socket, "presence_state")) == ["alice"]
    await socket.disconnect()


@pytest.mark.usefixtures("rooms")
async def test_a_rooms_activity_tells_its_members_of_each_new_message(
    alice_session: str, bob_session: str, carol_session: str
) -> None:
    carol = await open_socket("/ws/topics/", carol_session)
    assert (await join(carol, "activity:backstage"))["status"] == "error"  # not a member
    alice = await open_socket("/ws/topics/", alice_session)
    assert (await join(alice, "activity:general"))["status"] == "ok"
    bob = await open_socket("/ws/topics/", bob_session)
    assert (await join(bob, "chat:general"))["status"] == "ok"
    await bob.send_json_to(["1", "2", "chat:general", "message", {"text": "hello"}])
    message = (await next_event(bob, "reply"))["response"]["id"]
    assert await next_event(alice, "message") == {"id": message, "author": "bob"}
    await alice.send_json_to(["1", "2", "activity:general", "unread", {}])
    reply = await next_event(alice, "reply")
    assert reply == {"status": "ok", "response": {"unread": 1, "newest": message}}
    for socket in (alice, bob, carol):
        await socket.disconnect()


async def test_a_posts_topic_hears_its_comments_and_like_count(
    alice: User, bob: User, bob_session: str
) -> None:
    post = await database_sync_to_async(Post.objects.create)(author=bob, text="mine")
    anonymous = await open_socket("/ws/topics/")
    assert (await join(anonymous, f"post:{post.pk}"))["response"]["reason"] == "login_required"
    reader = await open_socket("/ws/topics/", bob_session)
    assert (await join(reader, "post:999999"))["response"]["reason"] == "not_found"
    # Another spelling of the id would be a topic of its own that no broadcast reaches (and
    # one more log in the layer for each): refused as well.
    for alias in (f"0{post.pk}", f"+{post.pk}", f"{post.pk} ", "9" * 30):
        assert (await join(reader, f"post:{alias}"))["response"]["reason"] == "not_found"
    joined = await join(reader, f"post:{post.pk}", ref="2")
    assert joined["status"] == "ok"
    assert joined["response"]["recovered"] is True  # a topic with history
    client = AsyncClient()
    await client.aforce_login(alice)
    await client.post(f"/posts/{post.pk}/", {"text": "<b>hi</b>"})
    comment = await next_event(reader, "comment")
    assert (comment["author"], comment["text"]) == ("alice", "<b>hi</b>")
    await client.post(f"/posts/{post.pk}/like/")
    assert await next_event(reader, "likes") == {"count": 1}
    await client.post(f"/posts/{post.pk}/like/")  # unlike
    assert await next_event(reader, "likes") == {"count": 0}
    for socket in (anonymous, reader):
        await socket.disconnect()
