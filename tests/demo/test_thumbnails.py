"""Avatars: the upload view sends to a named channel, the worker consumer makes the thumbnail
and the user is notified; ``WorkerLifespan`` runs that worker beside the server."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient
from PIL import Image

from channelworks.db import database_sync_to_async
from channelworks.demo.lifespan import WorkerLifespan
from channelworks.demo.routing import channel_routes
from channelworks.demo.social.models import Notification
from channelworks.demo.social.notify import user_topic
from channelworks.demo.thumbnails import consumers as thumbnail_consumers
from channelworks.demo.thumbnails.consumers import THUMBNAIL_CHANNEL
from channelworks.demo.thumbnails.forms import MAX_BYTES
from channelworks.demo.thumbnails.images import make_thumbnail
from channelworks.demo.thumbnails.models import Avatar
from channelworks.layers import InMemoryChannelLayer
from channelworks.routing import ChannelNameRouter
from channelworks.testing import ApplicationCommunicator
from channelworks.topics import group_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


def image_bytes(size: tuple[int, int] = (300, 200), format: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=format)
    return out.getvalue()


def jpeg() -> bytes:
    return image_bytes()


async def nothing_on(layer: InMemoryChannelLayer, channel: str) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), 0.1)
    except TimeoutError:
        return True
    return False


def upload(data: bytes, name: str = "me.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


# -- the image work ----------------------------------------------------------------------------


def test_a_thumbnail_is_a_square_png() -> None:
    with Image.open(io.BytesIO(make_thumbnail(jpeg()))) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("PNG", (128, 128))


def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    big = io.BytesIO()
    Image.new("1", (6000, 6000)).save(big, format="PNG")  # 36 Mpx in a few kilobytes
    with pytest.raises(OSError, match="6000x6000 image is over the 25,000,000 pixel limit"):
        make_thumbnail(big.getvalue())


def test_bytes_that_are_no_image_raise_oserror() -> None:
    with pytest.raises(OSError, match="cannot identify image file"):
        make_thumbnail(b"not an image")


# -- the upload view ---------------------------------------------------------------------------


async def test_an_upload_sends_a_message_to_the_named_channel(
    alice: User, channel_layer: InMemoryChannelLayer
) -> None:
    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.post("/avatar/", {"image": upload(jpeg())})
    assert response.status_code == 302
    avatar = await database_sync_to_async(Avatar.objects.get)(user=alice)
    assert await channel_layer.receive(THUMBNAIL_CHANNEL) == {
        "type": "thumbnail.generate",
        "avatar_id": avatar.pk,
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"GIF89a but not really", b"Upload a valid image"),
        (image_bytes((1400, 1400), "BMP"), b"at most 5 MB"),  # a valid image, too big
    ],
)
async def test_a_bad_upload_is_refused_and_sends_nothing(
    alice: User, channel_layer: InMemoryChannelLayer, data: bytes, error: bytes
) -> None:
    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.post("/avatar/", {"image": upload(data)})
    assert response.status_code == 200
    assert error in response.content
    assert not await database_sync_to_async(Avatar.objects.exists)()
    assert len(data) > MAX_BYTES or b"valid" in error
    assert await nothing_on(channel_layer, THUMBNAIL_CHANNEL)


# -- the worker --------------------------------------------------------------------------------


async def avatar_of(user: User, data: bytes) -> Avatar:
    return await database_sync_to_async(Avatar.objects.create)(user=user, image=upload(data))


async def listen_to(layer: InMemoryChannelLayer, user: User) -> str:
    """A channel in the group of ``user``'s notification topic, as their open pages are."""
    channel = await layer.new_channel()
    await layer.group_add(group_for(user_topic(user.pk)), channel)
    return channel


async def notified(layer: InMemoryChannelLayer, page: str) -> dict[str, Any]:
    """The next notification broadcast to the pages of ``listen_to``."""
    message = await layer.receive(page)
    assert (message["type"], message["event"]) == ("topics.push", "notification"), message
    payload: dict[str, Any] = message["payload"]
    return payload


async def run_worker_message(message: dict[str, object]) -> None:
    router = ChannelNameRouter(channel_routes)
    worker = ApplicationCommunicator(router, {"type": "channel", "channel": THUMBNAIL_CHANNEL})
    await worker.send_input(message)
    await worker.receive_nothing(0.05)  # let it take the message
    await worker.stop()


async def test_the_worker_makes_the_thumbnail_and_notifies_the_user(
    alice: User, channel_layer: InMemoryChannelLayer
) -> None:
    avatar = await avatar_of(alice, jpeg())
    page = await listen_to(channel_layer, alice)
    await run_worker_message({"type": "thumbnail.generate", "avatar_id": avatar.pk})
    event = await notified(channel_layer, page)
    assert event["kind"] == "thumbnail"
    await database_sync_to_async(avatar.refresh_from_db)()
    assert event["data"]["thumbnail_url"] == avatar.thumbnail.url
    with avatar.thumbnail.open("rb") as stored, Image.open(stored) as image:
        assert image.size == (128, 128)


async def test_a_newer_upload_made_while_the_worker_works_is_kept(
    alice: User, channel_layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    avatar = await avatar_of(alice, jpeg())

    def upload_meanwhile(data: bytes) -> bytes:
        Avatar.objects.filter(pk=avatar.pk).update(image="avatars/newer.jpg")
        return make_thumbnail(data)

    monkeypatch.setattr(thumbnail_consumers, "make_thumbnail", upload_meanwhile)
    page = await listen_to(channel_layer, alice)
    await run_worker_message({"type": "thumbnail.generate", "avatar_id": avatar.pk})
    assert await notified(channel_layer, page)
    await database_sync_to_async(avatar.refresh_from_db)()
    assert avatar.image.name == "avatars/newer.jpg"  # not put back by the worker's save
    assert avatar.thumbnail


async def test_a_new_upload_deletes_the_file_of_the_one_it_replaces(
    alice: User, channel_layer: InMemoryChannelLayer
) -> None:
    client = AsyncClient()
    await client.aforce_login(alice)
    await client.post("/avatar/", {"image": upload(jpeg(), "first.jpg")})
    first = await database_sync_to_async(Avatar.objects.get)(user=alice)
    storage, first_name = first.image.storage, str(first.image.name)
    assert storage.exists(first_name)
    response = await client.post("/avatar/", {"image": upload(jpeg(), "second.jpg")})
    assert response.status_code == 302
    second = await database_sync_to_async(Avatar.objects.get)(user=alice)
    assert second.image.name != first_name
    assert storage.exists(str(second.image.name))
    assert not storage.exists(first_name)


async def test_a_worker_whose_image_was_replaced_meanwhile_reports_nothing(
    alice: User, channel_layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker read the row, then a newer upload replaced the image and deleted its file
    # before the worker opened it: the newer upload's own message makes the thumbnail.
    avatar = await avatar_of(alice, jpeg())
    storage, old_name = avatar.image.storage, str(avatar.image.name)

    def replaced_meanwhile(data: bytes) -> bytes:
        raise AssertionError("the replaced image must not be read")

    field_file = type(avatar.image)
    real_open = field_file.open

    def open_after_replacement(field: Any, mode: str = "rb") -> Any:
        Avatar.objects.filter(pk=avatar.pk).update(image="avatars/newer.jpg")
        storage.delete(old_name)
        return real_open(field, mode)

    monkeypatch.setattr(thumbnail_consumers, "make_thumbnail", replaced_meanwhile)
    monkeypatch.setattr(field_file, "open", open_after_replacement)
    page = await listen_to(channel_layer, alice)
    await run_worker_message({"type": "thumbnail.generate", "avatar_id": avatar.pk})
    assert await nothing_on(channel_layer, page)
    assert await database_sync_to_async(Notification.objects.count)() == 0


async def test_an_unreadable_avatar_is_reported_not_crashed_on(
    alice: User, channel_layer: InMemoryChannelLayer
) -> None:
    avatar = await avatar_of(alice, b"broken")
    page = await listen_to(channel_layer, alice)
    await run_worker_message({"type": "thumbnail.generate", "avatar_id": avatar.pk})
    event = await notified(channel_layer, page)
    assert event["text"] == "Your avatar could not be read"
    assert await database_sync_to_async(Notification.objects.count)() == 1


async def test_the_lifespan_runs_the_worker_with_the_server(
    alice: User, channel_layer: InMemoryChannelLayer
) -> None:
    avatar = await avatar_of(alice, jpeg())
    page = await listen_to(channel_layer, alice)
    lifespan = ApplicationCommunicator(
        WorkerLifespan(ChannelNameRouter(channel_routes), channel_routes), {"type": "lifespan"}
    )
    await lifespan.send_input({"type": "lifespan.startup"})
    assert await lifespan.receive_output() == {"type": "lifespan.startup.complete"}

    await channel_layer.send(
        THUMBNAIL_CHANNEL, {"type": "thumbnail.generate", "avatar_id": avatar.pk}
    )
    event = await notified(channel_layer, page)
    assert event["text"] == "Your avatar thumbnail is ready"

    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output() == {"type": "lifespan.shutdown.complete"}
    await lifespan.wait()


async def test_a_forced_exit_ends_the_lifespan_quietly_and_stops_the_worker(
    channel_layer: InMemoryChannelLayer,
) -> None:
    # A second Ctrl-C: uvicorn skips lifespan.shutdown and the loop cancels every task; a
    # lifespan that raised CancelledError was logged as an error, with a traceback.
    lifespan = WorkerLifespan(ChannelNameRouter(channel_routes), channel_routes)
    inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    started = asyncio.Event()
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        started.set()

    await inbox.put({"type": "lifespan.startup"})
    app = asyncio.create_task(lifespan({"type": "lifespan"}, inbox.get, send))  # type: ignore[arg-type]
    await started.wait()
    assert sent == [{"type": "lifespan.startup.complete"}]
    workers = [t for t in asyncio.all_tasks() if t is not app and "Worker.run" in repr(t)]
    assert len(workers) == 1
    app.cancel()
    await app  # ends, does not raise
    assert not app.cancelled()
    await asyncio.gather(*workers, return_exceptions=True)
    assert workers[0].cancelled()
