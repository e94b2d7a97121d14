"""Seed 004 (chat service walkthrough) run through the ``channels`` names.

The consumers are tested alone, then through the project's ``application`` with its three
branches: ``http``, ``websocket`` (by URL) and ``channel`` (a worker, by channel name).
"""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from channelworks.layers import BaseChannelLayer
from channelworks.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator


async def test_echo_consumer_echoes_text(seed004_consumers: ModuleType) -> None:
    client = WebsocketCommunicator(seed004_consumers.EchoConsumer.as_asgi(), "/ws/echo/")
    assert await client.connect() == (True, None)
    await client.send_to(text_data="안녕하세요")
    assert await client.receive_from() == "안녕하세요"
    await client.disconnect()


async def test_echo_consumer_fails_on_binary_as_written(seed004_consumers: ModuleType) -> None:
    # The notes say text and binary are echoed, but the code sends text_data only, so a binary
    # frame makes send() fail; the runtime closes the socket with 1011 (internal error), then
    # the error leaves the application, as in Channels.
    client = WebsocketCommunicator(seed004_consumers.EchoConsumer.as_asgi(), "/ws/echo/")
    await client.connect()
    await client.send_to(bytes_data=b"\x00\x01")
    assert await client.receive_output() == {"type": "websocket.close", "code": 1011}
    with pytest.raises(ValueError, match="text_data or bytes_data"):
        await client.wait()


@pytest.mark.parametrize("action", ["created", "updated", "deleted"])
async def test_liveblog_consumer_forwards_group_events(
    seed004_consumers: ModuleType, layer: BaseChannelLayer, action: str
) -> None:
    app = seed004_consumers.LiveblogConsumer.as_asgi()
    readers = [WebsocketCommunicator(app, "/ws/liveblog/") for _ in range(2)]
    for reader in readers:
        assert await reader.connect() == (True, None)
    event = {"type": f"liveblog.post.{action}", "post_id": 7}
    await layer.group_send("liveblog", event)
    for reader in readers:
        assert await reader.receive_json_from() == event
        await reader.disconnect()
    # Both left the group on disconnect: a new event has nobody to go to and raises nothing.
    await layer.group_send("liveblog", event)


async def test_liveblog_consumer_drops_an_unknown_event_and_stays_open(
    seed004_consumers: ModuleType, layer: BaseChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    reader = WebsocketCommunicator(seed004_consumers.LiveblogConsumer.as_asgi(), "/ws/liveblog/")
    await reader.connect()
    await layer.group_send("liveblog", {"type": "liveblog.post.pinned", "post_id": 7})
    await layer.group_send("liveblog", {"type": "liveblog.post.created", "post_id": 8})
    assert json.loads(await reader.receive_from())["post_id"] == 8
    assert "liveblog.post.pinned" in caplog.text
    assert "LiveblogConsumer" in caplog.text
    await reader.disconnect()


# -- the project's application ----------------------------------------------------------------


async def test_http_branch(seed004_asgi: ModuleType) -> None:
    response = await HttpCommunicator(seed004_asgi.application, "GET", "/").get_response()
    assert response["status"] == 200
    assert response["body"] == b"Hello from Django"


async def test_websocket_branch_echo(seed004_asgi: ModuleType) -> None:
    client = WebsocketCommunicator(seed004_asgi.application, "/ws/echo/")
    assert await client.connect() == (True, None)
    await client.send_to(text_data="echo?")
    assert await client.receive_from() == "echo?"
    await client.disconnect()


async def test_websocket_branch_liveblog(seed004_asgi: ModuleType, layer: BaseChannelLayer) -> None:
    client = WebsocketCommunicator(seed004_asgi.application, "/ws/liveblog/")
    assert await client.connect() == (True, None)
    await layer.group_send("liveblog", {"type": "liveblog.post.created", "post_id": 1})
    assert await client.receive_json_from() == {"type": "liveblog.post.created", "post_id": 1}
    await client.disconnect()


async def test_websocket_branch_chat_rooms_by_url(
    seed004_asgi: ModuleType, layer: BaseChannelLayer
) -> None:
    app = seed004_asgi.application
    alice = WebsocketCommunicator(app, "/ws/chat/1234/chat/")
    bob = WebsocketCommunicator(app, "/ws/chat/1234/chat/")
    carol = WebsocketCommunicator(app, "/ws/chat/99/chat/")
    for client in (alice, bob, carol):
        assert await client.connect() == (True, None)
    await alice.send_to(text_data="room 1234 only")
    expected = {"type": "chat.message", "message": "room 1234 only"}
    assert await alice.receive_json_from() == expected
    assert await bob.receive_json_from() == expected
    assert await carol.receive_nothing()
    for client in (alice, bob, carol):
        await client.disconnect()


async def test_websocket_branch_rejects_a_room_that_is_not_an_int(
    seed004_asgi: ModuleType, layer: BaseChannelLayer
) -> None:
    client = WebsocketCommunicator(seed004_asgi.application, "/ws/chat/lobby/chat/")
    accepted, _ = await client.connect()
    assert not accepted


async def test_channel_branch_runs_the_thumbnail_worker(
    seed004_asgi: ModuleType, layer: BaseChannelLayer
) -> None:
    watcher = await layer.new_channel()
    await layer.group_add("thumbnails", watcher)
    worker = ApplicationCommunicator(
        seed004_asgi.application, {"type": "channel", "channel": "thumbnail-generate"}
    )
    await worker.send_input({"type": "thumbnail.generate", "id": 90902949})
    assert await layer.receive(watcher) == {
        "type": "thumbnail.generated",
        "id": 90902949,
        "thumbnail": "thumbnails/90902949.jpg",
    }
    assert await worker.receive_nothing()
    await worker.stop()


async def test_channel_branch_refuses_an_unknown_channel(seed004_asgi: ModuleType) -> None:
    worker = ApplicationCommunicator(
        seed004_asgi.application, {"type": "channel", "channel": "video-transcode"}
    )
    with pytest.raises(ValueError, match="video-transcode"):
        await worker.wait()


def test_routing_tables_are_as_declared(seed004_routing: ModuleType) -> None:
    routes = [str(p.pattern) for p in seed004_routing.websocket_urlpatterns]
    assert routes == ["ws/echo/", "ws/liveblog/", "ws/chat/<int:room_pk>/chat/"]
    assert list(seed004_routing.worker_mapping) == ["thumbnail-generate"]
