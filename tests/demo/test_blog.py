"""The live blog: every create, edit and delete reaches the open pages (the topic
``liveblog``) from model signals."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient, Client

from channelworks.db import database_sync_to_async
from channelworks.demo.blog.models import Entry
from tests.demo.support import Topics

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


async def live_page(since: object = None) -> Topics:
    """An anonymous page's topics socket that joined ``liveblog``."""
    page = await Topics.open()
    reply = await page.join("liveblog", since)
    assert reply["status"] == "ok", reply
    return page


async def entry_event(page: Topics, event: str) -> dict[str, Any]:
    frame = await page.event("liveblog", event)
    payload: dict[str, Any] = frame[4]
    return payload


@pytest.fixture
def editor(alice: User) -> User:
    """alice, allowed to write the blog (the seeded alice is a superuser)."""
    alice.user_permissions.add(*Permission.objects.filter(content_type__app_label="blog"))
    return alice


async def test_saves_and_deletes_reach_every_page_including_anonymous_ones() -> None:
    pages = [await live_page() for _ in range(2)]
    entry = await database_sync_to_async(Entry.objects.create)(title="Kick-off", body="<b>go</b>")
    for page in pages:
        frame = await entry_event(page, "created")
        assert (frame["entry"]["id"], frame["entry"]["body"]) == (entry.pk, "<b>go</b>")

    entry.title = "Kick-off (edited)"
    await database_sync_to_async(entry.save)()  # what the admin does
    for page in pages:
        assert (await entry_event(page, "updated"))["entry"]["title"] == "Kick-off (edited)"

    pk = entry.pk
    await database_sync_to_async(entry.delete)()
    for page in pages:
        deleted = await page.event("liveblog", "deleted")
        assert (deleted[4], deleted[5][0]) == ({"id": pk}, 3)  # with its position in the log
        await page.close()


async def test_the_edit_form_updates_the_pages(editor: User) -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Draft", body="text")
    page = await live_page()
    client = AsyncClient()
    await client.aforce_login(editor)
    response = await client.post(f"/blog/{entry.pk}/edit/", {"title": "Final", "body": "text"})
    assert response.status_code == 302
    assert (await entry_event(page, "updated"))["entry"]["title"] == "Final"
    await page.close()


async def test_an_invalid_form_sends_nothing(editor: User) -> None:
    page = await live_page()
    client = AsyncClient()
    await client.aforce_login(editor)
    response = await client.post("/blog/new/", {"title": "", "body": "x"})
    assert response.status_code == 200
    assert await page.nothing()
    await page.close()


async def test_the_topic_is_read_only() -> None:
    page = await live_page()
    reply = await page.push("liveblog", "created", {"entry": {"id": 1}})
    assert reply == {"status": "error", "response": {"reason": "unhandled_event"}}
    await page.close()


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


async def test_a_page_that_reconnects_gets_the_edits_it_missed() -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Before", body="b")
    page = await Topics.open()
    offset, epoch = (await page.join("liveblog"))["response"]["position"]
    await page.close()
    entry.title = "Edited while away"
    await database_sync_to_async(entry.save)()

    page = await Topics.open()
    reply = await page.join("liveblog", since=[offset, epoch])
    assert (reply["response"]["recovered"], reply["response"]["missed"]) == (True, 1)
    assert (await entry_event(page, "updated"))["entry"]["title"] == "Edited while away"
    assert await page.nothing()
    await page.close()


async def test_the_page_joins_from_where_the_log_stood_when_it_was_made() -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Made", body="b")
    response = await AsyncClient().get("/blog/")
    position = response.context["position"]
    assert b'id="blog-position"' in response.content
    pk = entry.pk
    await database_sync_to_async(entry.delete)()  # before the page's socket joins
    page = await live_page(since=position)
    assert (await page.event("liveblog", "deleted"))[4] == {"id": pk}
    await page.close()


async def test_a_page_whose_log_is_lost_is_told_and_gets_every_entry_again() -> None:
    entry = await database_sync_to_async(Entry.objects.create)(title="Now", body="b")
    page = await Topics.open()
    reply = await page.join("liveblog", since=[4, "restarted"])
    assert reply["response"]["recovered"] is False
    assert await page.nothing()
    assert await page.push("liveblog", "entries") == {
        "status": "ok",
        "response": {"entries": [entry.as_event()]},
    }
    await page.close()
