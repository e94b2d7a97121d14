"""The live blog: every create, edit and delete reaches the open pages from model signals."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient, Client

from channelworks.db import database_sync_to_async
from channelworks.demo.blog.models import Entry
from channelworks.testing import WebsocketCommunicator
from tests.demo.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


async def live_page() -> WebsocketCommunicator:
    """A live blog socket, past the entries and the ``resumed`` frame it starts with."""
    socket = await open_socket("/ws/liveblog/")
    assert (await socket.receive_json_from())["type"] == "entries"
    assert (await socket.receive_json_from())["type"] == "resumed"
    return socket


@pytest.fixture
def editor(alice: User) -> User:
    """alice, allowed to write the blog (the seeded alice is a superuser)."""
    alice.user_permissions.add(*Permission.objects.filter(content_type__app_label="blog"))
    return alice


async def test_saves_and_deletes_reach_every_page_including_anonymous_ones() -> None:
    pages = [await live_page() for _ in range(2)]
    entry = await database_sync_to_async(Entry.objects.create)(title="Kick-off", body="<b>go</b>")
    for page in pages:
        frame = await page.receive_json_from()
        assert frame["type"] == "created"
        assert (frame["entry"]["id"], frame["entry"]["body"]) == (entry.pk, "<b>go</b>")

    entry.title = "Kick-off (edited)"
    await database_sync_to_async(entry.save)()  # what the admin does
    for page in pages:
        frame = await page.receive_json_from()
        assert (frame["type"], frame["entry"]["title"]) == ("updated", "Kick-off (edited)")

    pk = entry.pk
    await database_sync_to_async(entry.delete)()
    for page in pages:
        frame = await page.receive_json_from()
        assert (frame["type"], frame["id"], frame["position"][0]) == ("deleted", pk, 3)
        await page.disconnect()


async def test_the_edit_form_updates_the_pages(editor: User) -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Draft", body="text")
    page = await live_page()
    client = AsyncClient()
    await client.aforce_login(editor)
    response = await client.post(f"/blog/{entry.pk}/edit/", {"title": "Final", "body": "text"})
    assert response.status_code == 302
    frame = await page.receive_json_from()
    assert (frame["type"], frame["entry"]["title"]) == ("updated", "Final")
    await page.disconnect()


async def test_an_invalid_form_sends_nothing(editor: User) -> None:
    page = await live_page()
    client = AsyncClient()
    await client.aforce_login(editor)
    response = await client.post("/blog/new/", {"title": "", "body": "x"})
    assert response.status_code == 200
    assert await page.receive_nothing()
    await page.disconnect()


async def test_the_socket_is_read_only() -> None:
    page = await live_page()
    await page.send_json_to({"type": "created"})
    assert (await page.receive_json_from())["code"] == "read_only"
    await page.disconnect()


def test_the_page_lists_entries_escaped() -> None:
    Entry.objects.create(title="<script>t</script>", body="b")
    content = Client().get("/blog/").content
    assert b"&lt;script&gt;t&lt;/script&gt;" in content
    assert b"<script>t</script>" not in content


def test_only_editors_may_change_the_blog(carol: User) -> None:
    entry = Entry.objects.create(title="Kept", body="b")
    client = Client()
    client.force_login(carol)
    assert client.post("/blog/new/", {"title": "x", "body": "y"}).status_code == 403
    assert (
        client.post(f"/blog/{entry.pk}/edit/", {"title": "Changed", "body": "b"}).status_code == 403
    )
    assert client.get(f"/blog/{entry.pk}/edit/").status_code == 403
    assert client.post(f"/blog/{entry.pk}/delete/").status_code == 403
    assert list(Entry.objects.values_list("title", flat=True)) == ["Kept"]
    page = client.get("/blog/").content
    assert b"New entry" not in page
    assert b"/edit/" not in page
    assert b'data-can-edit="false"' in page


def test_editors_see_the_form_and_the_edit_links(editor: User) -> None:
    entry = Entry.objects.create(title="Mine", body="b")
    client = Client()
    client.force_login(editor)
    page = client.get("/blog/").content
    assert b"New entry" in page
    assert f"/blog/{entry.pk}/edit/".encode() in page
    assert b'data-can-edit="true"' in page


async def resume(query: str) -> tuple[WebsocketCommunicator, list[dict[str, Any]]]:
    """A live blog socket opened with ``query``; its frames up to ``resumed``."""
    socket = await open_socket(f"/ws/liveblog/?{query}")
    frames = [await socket.receive_json_from()]
    while frames[-1]["type"] != "resumed":
        frames.append(await socket.receive_json_from())
    return socket, frames


async def test_a_page_that_reconnects_gets_the_edits_it_missed() -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Before", body="b")
    page, frames = await resume("")
    assert frames[0] == {"type": "entries", "entries": [entry.as_event()]}
    offset, epoch = frames[-1]["position"]
    await page.disconnect()
    entry.title = "Edited while away"
    await database_sync_to_async(entry.save)()

    page, frames = await resume(f"offset={offset}&epoch={epoch}")
    assert [(f["type"], f.get("entry", {}).get("title")) for f in frames] == [
        ("updated", "Edited while away"),
        ("resumed", None),
    ]
    assert frames[-1]["source"] == "log"
    await page.disconnect()


async def test_a_page_whose_log_is_lost_gets_every_entry_again() -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Now", body="b")
    page, frames = await resume("offset=4&epoch=restarted")
    assert frames[0] == {"type": "entries", "entries": [entry.as_event()]}
    assert frames[-1]["source"] == "database"
    await page.disconnect()
