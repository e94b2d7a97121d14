"""The admin live view: staff only, lists live sockets, and its button closes a real one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, override_settings
from django.urls import path
from websockets.exceptions import ConnectionClosed

from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.routing import URLRouter
from tests.ops.test_metrics import Echo
from tests.server.live import TIMEOUT, LiveServer, Uvicorn, recv_text, ws_connect

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("urls"),
]

app = URLRouter([path("room/<str:name>/", Echo.as_asgi(), name="room")])
LIVE = "/admin/channelworks/connections/"
CLOSE = "/admin/channelworks/connections/close/"


@pytest.fixture
def urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF="tests.ops.urls"):
        yield


@pytest.fixture
def layer() -> Iterator[InMemoryChannelLayer]:
    layer = InMemoryChannelLayer()
    channel_layers.configure({})
    channel_layers.set("default", layer)
    yield layer
    channel_layers.configure(None)


@pytest.fixture
async def live(layer: InMemoryChannelLayer) -> AsyncIterator[LiveServer]:
    server = Uvicorn(app)
    started = await server.start()
    yield started
    await server.stop()


async def client_as(*, staff: bool) -> AsyncClient:
    user = await User.objects.acreate_user(
        "staff" if staff else "visitor", password="pw", is_staff=staff
    )
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def test_anonymous_goes_to_login_and_non_staff_is_refused(live: LiveServer) -> None:
    anonymous = await AsyncClient().get(LIVE)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/?next=")
    visitor = await client_as(staff=False)
    assert (await visitor.get(LIVE)).status_code == 403
    assert (await visitor.post(CLOSE, {"channel_name": "x"})).status_code == 403


async def test_staff_sees_live_connections_and_closes_one(
    live: LiveServer, layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    staff = await client_as(staff=True)
    async with ws_connect(live.ws("/room/lobby/")) as kept, ws_connect(live.ws("/room/x/")) as gone:
        await kept.send("hello")
        assert await recv_text(kept) == "hello"
        page = await staff.get(LIVE)
        assert page.status_code == 200
        html = page.content.decode()
        assert "1 process(es) answered" in html
        rows = page.context["connections"]
        assert {row["path"] for row in rows} == {"/room/lobby/", "/room/x/"}
        [lobby] = [row for row in rows if row["path"] == "/room/lobby/"]
        assert (lobby["frames_in"], lobby["frames_out"], lobby["groups"]) == (1, 1, ["room"])
        assert lobby["client"] in html
        assert lobby["id"] in html
        assert page.context["groups"] == [{"name": "room", "members": 2, "present": 0}]
        await layer.presence_track("room", lobby["channel_name"], "alice", {"device": "phone"})
        page = await staff.get(LIVE)
        assert page.context["groups"] == [{"name": "room", "members": 2, "present": 1}]
        [target] = [row for row in rows if row["path"] == "/room/x/"]
        closed = await staff.post(
            CLOSE, {"channel_name": target["channel_name"], "connection_id": target["id"]}
        )
        assert closed.status_code == 302
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(TIMEOUT):
                await gone.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (
            4403,
            "closed by an administrator",
        )
        [audit] = [r for r in caplog.records if r.name == "channelworks.ops.audit"]
        assert f"by=staff connection_id={target['id']}" in audit.getMessage()
        await kept.send("still here")
        assert await recv_text(kept) == "still here"
        page = await staff.get(LIVE)
        assert [row["path"] for row in page.context["connections"]] == ["/room/lobby/"]


async def test_close_refuses_bad_input_with_400_and_no_audit_line(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    # A channel name the layer refuses raised InvalidChannelName out of the view (a 500),
    # after the audit line had recorded a close that never happened; a connection id with a
    # line break wrote a made-up second line into the audit log.
    staff = await client_as(staff=True)
    channel = await layer.new_channel()
    for form in (
        {"channel_name": "not a channel name!"},
        {"channel_name": "x" * 200},
        {"channel_name": channel, "connection_id": "1\nby=someone-else connection_id=2"},
    ):
        answer = await staff.post(CLOSE, form)
        assert answer.status_code == 400, form
    assert not [r for r in caplog.records if r.name == "channelworks.ops.audit"]
    assert layer.receive_nowait(channel) is None


async def test_close_needs_the_csrf_token(layer: InMemoryChannelLayer) -> None:
    user = await User.objects.acreate_user("csrf", password="pw", is_staff=True)
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    channel = await layer.new_channel()
    assert (await client.post(CLOSE, {"channel_name": channel})).status_code == 403
    assert layer.receive_nowait(channel) is None


async def test_fields_from_users_and_clients_are_escaped(
    live: LiveServer, layer: InMemoryChannelLayer
) -> None:
    staff = await client_as(staff=True)
    evil = "<img src=x onerror=alert(1)>"  # in the path, shown in the Path column
    async with ws_connect(live.ws(f"/room/{quote(evil)}/")) as sock:
        await sock.send("hi")
        await recv_text(sock)
        page = await staff.get(LIVE)
    [row] = page.context["connections"]
    assert row["path"] == f"/room/{evil}/"
    html = page.content.decode()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
