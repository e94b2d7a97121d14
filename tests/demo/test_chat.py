"""Chat rooms: the socket, the saved history, who may see a room, and bad input."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from channelworks.db import database_sync_to_async
from channelworks.demo import codes
from channelworks.demo.chat.models import Message, Room
from tests.demo.support import close_code, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


@pytest.fixture
def general() -> Room:
    return Room.objects.create(name="General", slug="general")


@pytest.fixture
def backstage(alice: User) -> Room:
    room = Room.objects.create(name="Backstage", slug="backstage", is_private=True)
    room.members.add(alice)
    return room


messages_in = database_sync_to_async(
    lambda room: list(room.messages.values_list("text", flat=True))
)


# -- the socket --------------------------------------------------------------------------------


async def test_a_message_reaches_everyone_in_the_room_and_is_saved(
    general: Room, alice_session: str, bob_session: str
) -> None:
    alice = await open_socket("/ws/chat/general/", alice_session)
    bob = await open_socket("/ws/chat/general/", bob_session)
    await alice.send_json_to({"type": "message", "text": "  hello bob  "})
    for socket in (alice, bob):
        frame = await socket.receive_json_from()
        assert frame["type"] == "message"
        assert (frame["author"], frame["text"]) == ("alice", "hello bob")
    assert await messages_in(general) == ["hello bob"]
    await alice.disconnect()
    await bob.disconnect()


async def test_rooms_do_not_hear_each_other(
    general: Room, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(Room.objects.create)(name="Random", slug="random")
    alice = await open_socket("/ws/chat/general/", alice_session)
    bob = await open_socket("/ws/chat/random/", bob_session)
    await alice.send_json_to({"type": "message", "text": "only general"})
    assert (await alice.receive_json_from())["text"] == "only general"
    assert await bob.receive_nothing()
    await alice.disconnect()
    await bob.disconnect()


async def test_html_is_carried_as_text(general: Room, alice_session: str) -> None:
    alice = await open_socket("/ws/chat/general/", alice_session)
    await alice.send_json_to({"type": "message", "text": "<img src=x onerror=alert(1)>"})
    assert (await alice.receive_json_from())["text"] == "<img src=x onerror=alert(1)>"
    await alice.disconnect()


# -- who may connect ---------------------------------------------------------------------------


async def test_a_socket_without_a_session_is_closed_with_login_required(general: Room) -> None:
    socket = await open_socket("/ws/chat/general/")
    assert await close_code(socket) == (codes.LOGIN_REQUIRED, "log in to chat")


async def test_a_socket_with_an_unknown_session_is_anonymous(general: Room) -> None:
    socket = await open_socket("/ws/chat/general/", "no-such-session")
    assert (await close_code(socket))[0] == codes.LOGIN_REQUIRED


async def test_a_room_that_does_not_exist_is_closed_with_not_found(alice_session: str) -> None:
    socket = await open_socket("/ws/chat/nowhere/", alice_session)
    assert await close_code(socket) == (codes.NOT_FOUND, "no such room")


async def test_a_private_room_refuses_non_members_and_hears_nothing_of_it(
    backstage: Room, alice_session: str, carol_session: str
) -> None:
    carol = await open_socket("/ws/chat/backstage/", carol_session)
    assert (await close_code(carol))[0] == codes.FORBIDDEN
    alice = await open_socket("/ws/chat/backstage/", alice_session)
    await alice.send_json_to({"type": "message", "text": "members only"})
    assert (await alice.receive_json_from())["text"] == "members only"
    await alice.disconnect()


async def test_a_member_removed_from_a_private_room_is_closed_out_at_once(
    backstage: Room, alice: User, bob: User, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(backstage.members.add)(bob)
    alice_socket = await open_socket("/ws/chat/backstage/", alice_session)
    bob_socket = await open_socket("/ws/chat/backstage/", bob_session)
    await database_sync_to_async(backstage.members.remove)(bob)  # as the admin does
    assert await close_code(bob_socket) == (codes.FORBIDDEN, "this room is private")
    await alice_socket.send_json_to({"type": "message", "text": "bob is gone"})
    assert (await alice_socket.receive_json_from())["text"] == "bob is gone"  # alice stays
    # Taken away from the user's side, and all at once: the same.
    alice_again = await open_socket("/ws/chat/backstage/", alice_session)
    await database_sync_to_async(alice.private_rooms.clear)()
    for socket in (alice_socket, alice_again):
        assert (await close_code(socket))[0] == codes.FORBIDDEN


async def test_a_room_made_private_closes_out_who_is_not_a_member(
    general: Room, alice: User, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(general.members.add)(alice)
    alice_socket = await open_socket("/ws/chat/general/", alice_session)
    bob_socket = await open_socket("/ws/chat/general/", bob_session)
    general.is_private = True
    await database_sync_to_async(general.save)()
    assert (await close_code(bob_socket))[0] == codes.FORBIDDEN
    assert await alice_socket.receive_nothing()
    await alice_socket.disconnect()


async def test_a_room_moved_or_deleted_closes_its_sockets_as_not_found(
    general: Room, alice_session: str
) -> None:
    await database_sync_to_async(Room.objects.create)(name="Random", slug="random")
    moved = await open_socket("/ws/chat/general/", alice_session)
    deleted = await open_socket("/ws/chat/random/", alice_session)
    general.slug = "lobby"
    await database_sync_to_async(general.save)()
    assert await close_code(moved) == (codes.NOT_FOUND, "no such room")
    await database_sync_to_async(Room.objects.filter(slug="random").delete)()
    assert (await close_code(deleted))[0] == codes.NOT_FOUND


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "text": ""}, "required"),
        ({"type": "message", "text": "   "}, "required"),
        ({"type": "message"}, "required"),
        ({"type": "message", "text": "x" * (Message.MAX_LENGTH + 1)}, "max_length"),
        ({"type": "shout", "text": "hi"}, "unknown"),
        (["message", "hi"], "unknown"),
        ("hi", "unknown"),
    ],
)
async def test_bad_messages_get_an_error_frame_and_touch_no_one(
    general: Room, alice_session: str, bob_session: str, frame: object, code: str
) -> None:
    alice = await open_socket("/ws/chat/general/", alice_session)
    bob = await open_socket("/ws/chat/general/", bob_session)
    await alice.send_json_to(frame)
    error = await alice.receive_json_from()
    assert (error["type"], error["code"]) == ("error", code)
    assert error["message"]
    assert await bob.receive_nothing()
    assert await messages_in(general) == []
    # alice's socket is still open and works
    await alice.send_json_to({"type": "message", "text": "after the error"})
    assert (await bob.receive_json_from())["text"] == "after the error"
    await alice.disconnect()
    await bob.disconnect()


async def test_a_frame_that_is_not_json_closes_only_that_socket(
    general: Room, alice_session: str, bob_session: str
) -> None:
    alice = await open_socket("/ws/chat/general/", alice_session)
    bob = await open_socket("/ws/chat/general/", bob_session)
    await alice.send_to(text_data="{not json")
    assert (await close_code(alice))[0] == 1007
    await bob.send_json_to({"type": "message", "text": "still here"})
    assert (await bob.receive_json_from())["text"] == "still here"
    await bob.disconnect()


# -- pages -------------------------------------------------------------------------------------


def test_the_room_page_shows_the_saved_history_escaped(general: Room, alice: User) -> None:
    Message.objects.create(room=general, author=alice, text="<b>bold?</b>")
    client = Client()
    client.force_login(alice)
    response = client.get("/rooms/general/")
    assert response.status_code == 200
    assert b"&lt;b&gt;bold?&lt;/b&gt;" in response.content
    assert b"<b>bold?</b>" not in response.content


def test_a_missing_or_hidden_room_is_a_clear_404(backstage: Room, carol: User) -> None:
    client = Client()
    client.force_login(carol)
    for slug in ("nowhere", "backstage"):
        response = client.get(f"/rooms/{slug}/")
        assert response.status_code == 404
        assert f"No room “{slug}”".encode() in response.content


def test_the_room_list_hides_private_rooms_from_non_members(
    general: Room, backstage: Room, alice: User, carol: User
) -> None:
    client = Client()
    client.force_login(carol)
    assert b"Backstage" not in client.get("/rooms/").content
    client.force_login(alice)
    assert b"Backstage" in client.get("/rooms/").content


def test_creating_a_room(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post("/rooms/", {"name": "Book Club", "is_private": "on"})
    assert response.status_code == 302
    assert response["Location"] == "/rooms/book-club/"
    room = Room.objects.get(slug="book-club")
    assert list(room.members.all()) == [alice]
    again = client.post("/rooms/", {"name": "book club"})
    assert again.status_code == 200
    assert b"exists already" in again.content


def test_pages_need_a_login() -> None:
    response = Client().get("/rooms/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
