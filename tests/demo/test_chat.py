"""Chat rooms: the socket, the saved history, who may see a room, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from channelworks.db import database_sync_to_async
from channelworks.demo import codes
from channelworks.demo.chat import consumers
from channelworks.demo.chat.models import Message, Room
from channelworks.testing import WebsocketCommunicator
from tests.demo.support import close_code, enter, open_socket

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
    alice = await enter("/ws/chat/general/", alice_session)
    bob = await enter("/ws/chat/general/", bob_session)
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
    alice = await enter("/ws/chat/general/", alice_session)
    bob = await enter("/ws/chat/random/", bob_session)
    await alice.send_json_to({"type": "message", "text": "only general"})
    assert (await alice.receive_json_from())["text"] == "only general"
    assert await bob.receive_nothing()
    await alice.disconnect()
    await bob.disconnect()


async def test_html_is_carried_as_text(general: Room, alice_session: str) -> None:
    alice = await enter("/ws/chat/general/", alice_session)
    await alice.send_json_to({"type": "message", "text": "<img src=x onerror=alert(1)>"})
    assert (await alice.receive_json_from())["text"] == "<img src=x onerror=alert(1)>"
    await alice.disconnect()


# -- reconnecting: nothing missed, nothing twice ---------------------------------------------


async def reconnect(query: str, session: str) -> tuple[WebsocketCommunicator, list[dict[str, Any]]]:
    """A room socket opened with ``query``; the frames it starts with, up to ``resumed``."""
    socket = await open_socket(f"/ws/chat/general/?{query}", session)
    frames = [await socket.receive_json_from()]
    while frames[-1]["type"] != "resumed":
        frames.append(await socket.receive_json_from())
    return socket, frames


async def send_six(socket: WebsocketCommunicator) -> None:
    for n in range(1, 7):
        await socket.send_json_to({"type": "message", "text": f"missed {n}"})
        assert (await socket.receive_json_from())["text"] == f"missed {n}"


async def test_a_page_that_reconnects_gets_what_it_missed_from_the_log(
    general: Room, alice_session: str, bob_session: str
) -> None:
    alice, frames = await reconnect("", alice_session)
    offset, epoch = frames[-1]["position"]
    await alice.disconnect()
    bob = await enter("/ws/chat/general/", bob_session)
    await send_six(bob)

    alice, frames = await reconnect(f"offset={offset}&epoch={epoch}&after=0", alice_session)
    assert [f["text"] for f in frames[:-1]] == [f"missed {n}" for n in range(1, 7)]
    assert [f["position"] for f in frames[:-1]] == [[offset + n, epoch] for n in range(1, 7)]
    assert frames[-1] == {
        "type": "resumed",
        "source": "log",
        "missed": 6,
        "position": [offset + 6, epoch],
    }
    await bob.send_json_to({"type": "message", "text": "live again"})
    assert (await alice.receive_json_from())["text"] == "live again"  # no replay twice
    assert await alice.receive_nothing()
    await alice.disconnect()
    await bob.disconnect()


async def test_a_lost_log_is_made_up_from_the_database(
    general: Room, alice: User, alice_session: str, bob_session: str
) -> None:
    seen = await database_sync_to_async(Message.objects.create)(
        room=general, author=alice, text="seen before"
    )
    bob = await enter("/ws/chat/general/", bob_session)
    await send_six(bob)
    # The server restarted (a new epoch): the page's position names a log that is gone.
    alice_socket, frames = await reconnect(f"offset=9&epoch=gone&after={seen.pk}", alice_session)
    assert [f["text"] for f in frames[:-1]] == [f"missed {n}" for n in range(1, 7)]
    assert (frames[-1]["source"], frames[-1]["missed"]) == ("database", 6)
    assert frames[-1]["position"][1] != "gone"
    await alice_socket.disconnect()
    await bob.disconnect()


async def test_too_much_missed_asks_the_page_to_reload(
    general: Room, alice_session: str, bob_session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "CATCH_UP", 5)
    bob = await enter("/ws/chat/general/", bob_session)
    await send_six(bob)
    alice, frames = await reconnect("offset=1&epoch=gone&after=0", alice_session)
    assert [f["type"] for f in frames] == ["resumed"]
    assert frames[0]["source"] == "reload"
    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.parametrize(
    "query", ["offset=x&epoch=e&after=0", "offset=1&after=0", "epoch=&after=0"]
)
async def test_a_malformed_position_is_made_up_from_the_database(
    general: Room, alice: User, alice_session: str, query: str
) -> None:
    await database_sync_to_async(Message.objects.create)(room=general, author=alice, text="one")
    socket, frames = await reconnect(query, alice_session)
    assert [f.get("text") for f in frames] == ["one", None]
    assert frames[-1]["source"] == "database"
    await socket.disconnect()


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
    alice = await enter("/ws/chat/backstage/", alice_session)
    await alice.send_json_to({"type": "message", "text": "members only"})
    assert (await alice.receive_json_from())["text"] == "members only"
    await alice.disconnect()


async def test_a_member_removed_from_a_private_room_is_closed_out_at_once(
    backstage: Room, alice: User, bob: User, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(backstage.members.add)(bob)
    alice_socket = await enter("/ws/chat/backstage/", alice_session)
    bob_socket = await enter("/ws/chat/backstage/", bob_session)
    await database_sync_to_async(backstage.members.remove)(bob)  # as the admin does
    assert await close_code(bob_socket) == (codes.FORBIDDEN, "this room is private")
    await alice_socket.send_json_to({"type": "message", "text": "bob is gone"})
    assert (await alice_socket.receive_json_from())["text"] == "bob is gone"  # alice stays
    # Taken away from the user's side, and all at once: the same.
    alice_again = await enter("/ws/chat/backstage/", alice_session)
    await database_sync_to_async(alice.private_rooms.clear)()
    for socket in (alice_socket, alice_again):
        assert (await close_code(socket))[0] == codes.FORBIDDEN


async def test_a_room_made_private_closes_out_who_is_not_a_member(
    general: Room, alice: User, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(general.members.add)(alice)
    alice_socket = await enter("/ws/chat/general/", alice_session)
    bob_socket = await enter("/ws/chat/general/", bob_session)
    general.is_private = True
    await database_sync_to_async(general.save)()
    assert (await close_code(bob_socket))[0] == codes.FORBIDDEN
    assert await alice_socket.receive_nothing()
    await alice_socket.disconnect()


async def test_a_room_moved_or_deleted_closes_its_sockets_as_not_found(
    general: Room, alice_session: str
) -> None:
    await database_sync_to_async(Room.objects.create)(name="Random", slug="random")
    moved = await enter("/ws/chat/general/", alice_session)
    deleted = await enter("/ws/chat/random/", alice_session)
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
    alice = await enter("/ws/chat/general/", alice_session)
    bob = await enter("/ws/chat/general/", bob_session)
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
    alice = await enter("/ws/chat/general/", alice_session)
    bob = await enter("/ws/chat/general/", bob_session)
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
    assert b"\\u003Cb\\u003Ebold?\\u003C/b\\u003E" in response.content  # json_script escapes
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


def test_the_room_page_opens_with_the_newest_messages_and_pages_back(
    general: Room, backstage: Room, alice: User, carol: User
) -> None:
    Message.objects.bulk_create(
        Message(room=general, author=alice, text=f"m{n}") for n in range(120)
    )
    ids = list(general.messages.order_by("id").values_list("id", flat=True))
    client = Client()
    client.force_login(alice)
    page = client.get("/rooms/general/").context["history"]
    assert [m["text"] for m in page["messages"]] == [f"m{n}" for n in range(70, 120)]
    assert page["more"] is True
    older = client.get(f"/rooms/general/messages/?before={ids[70]}").json()
    assert [m["text"] for m in older["messages"]] == [f"m{n}" for n in range(20, 70)]
    assert older["more"] is True
    oldest = client.get(f"/rooms/general/messages/?before={ids[20]}").json()
    assert [m["text"] for m in oldest["messages"]] == [f"m{n}" for n in range(20)]
    assert oldest["more"] is False
    for bad in ("", "?before=", "?before=x", "?before=-1", f"?before={2**63}"):
        assert client.get(f"/rooms/general/messages/{bad}").status_code == 400
    client.force_login(carol)  # not a member of the private room
    assert client.get(f"/rooms/backstage/messages/?before={ids[0]}").status_code == 404


# -- unread counts -----------------------------------------------------------------------------


def unread_in_list(client: Client) -> dict[str, int]:
    rooms = client.get("/rooms/").context["rooms"]
    return {room.slug: room.unread for room in rooms}


async def test_unread_counts_follow_what_the_page_was_shown(
    general: Room, alice: User, bob: User, alice_session: str, bob_session: str
) -> None:
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    bob_socket = await enter("/ws/chat/general/", bob_session)
    await bob_socket.send_json_to({"type": "message", "text": "one"})
    await bob_socket.receive_json_from()
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 1}

    alice_socket, frames = await reconnect("after=0", alice_session)
    assert [f.get("text") for f in frames] == ["one", None]
    await bob_socket.send_json_to({"type": "message", "text": "two"})
    assert (await alice_socket.receive_json_from())["text"] == "two"
    await alice_socket.disconnect()  # alice's page was shown both: read
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 0}
    await bob_socket.send_json_to({"type": "message", "text": "three"})
    await bob_socket.receive_json_from()
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 1}
    await database_sync_to_async(client.get)("/rooms/general/")  # the page shows it: read
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 0}
    await bob_socket.disconnect()
