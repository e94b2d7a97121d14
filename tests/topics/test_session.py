"""A topics socket its Django session authenticated closes with 4401 when the session ends
(channelworks.session_sockets), leaving its topics as any socket's end does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from channelworks.auth import AuthMiddlewareStack
from channelworks.layers import InMemoryChannelLayer
from channelworks.session_sockets import SESSION_ENDED
from channelworks.testing import WebsocketCommunicator
from channelworks.topics import Topic, TopicsConsumer
from tests.django.support import session_cookie

left: list[str] = []


class Room(Topic):
    pattern = "room:{slug}"
    presence = True

    async def join(self, params: dict[str, Any]) -> None:
        user = self.user
        await self.track(user.username if user.is_authenticated else "anonymous", {})

    async def leave(self) -> None:
        left.append(self.user.username)


APP = AuthMiddlewareStack(TopicsConsumer.as_asgi(topics=[Room], heartbeat_interval=None))


def logged_in(username: str) -> tuple[Client, str]:
    client = Client()
    client.force_login(User.objects.create_user(username, password="secret"))
    return client, str(client.cookies[settings.SESSION_COOKIE_NAME].value)


async def joined(key: str | None) -> WebsocketCommunicator:
    headers = [session_cookie(key)] if key else []
    socket = WebsocketCommunicator(APP, "/", headers=headers, subprotocols=["channelworks.v1"])
    assert (await socket.connect())[0]
    await socket.send_json_to(["1", "1", "room:lobby", "join", {}])
    assert (await socket.receive_json_from())[4]["status"] == "ok"
    while not await socket.receive_nothing(0.05):
        await socket.receive_from()  # presence_state, diffs
    return socket


@pytest.mark.django_db(transaction=True)
async def test_a_logout_closes_the_session_s_topics_socket_with_4401_and_leaves_its_topics(
    layer: InMemoryChannelLayer,
) -> None:
    left.clear()
    browser, key = await sync_to_async(logged_in)("alice")
    alice, anonymous = await joined(key), await joined(None)

    await sync_to_async(browser.logout)()

    message = await alice.receive_output(5)
    while message["type"] == "websocket.send":  # presence diffs still in flight
        message = await alice.receive_output(5)
    assert (message["type"], message["code"]) == ("websocket.close", SESSION_ENDED)
    leaves: dict[str, Any] = {}
    while not leaves:
        frame = json.loads(await anonymous.receive_from(5))
        assert frame[3] == "presence_diff"
        leaves = frame[4]["leaves"]
    assert list(leaves) == ["alice"]
    assert left == ["alice"]  # the topic's leave ran
    await anonymous.send_json_to([None, "2", "$", "heartbeat", {}])
    assert (await anonymous.receive_json_from())[4]["status"] == "ok"  # it serves on
    await anonymous.disconnect()
    assert layer.group_names() == []
