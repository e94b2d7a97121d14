"""The topics endpoint behind a real uvicorn, driven by the Python client and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket as pysocket
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from websockets.exceptions import ConnectionClosed, InvalidStatus

from channelworks.client import Disconnected, JoinError, PushError, PushTimeout, Socket
from channelworks.layers import InMemoryChannelLayer
from channelworks.topics import TopicsConsumer, TopicsObserver, abroadcast, broadcast, observers
from channelworks.topics.frames import MSGPACK_SUBPROTOCOL, Frame
from tests.server.live import TIMEOUT, Uvicorn, closed, recv_text, ws_connect
from tests.topics.apps import Plain, Room
from tests.topics.conftest import Serve

APP = TopicsConsumer.as_asgi(topics=[Room, Plain])


async def open_socket(url: str, **options: Any) -> Socket:
    options.setdefault("push_timeout", TIMEOUT)
    options.setdefault("backoff_base", 0.05)
    options.setdefault("backoff_max", 0.2)
    socket = Socket(url, **options)
    await socket.connect()
    return socket


async def next_event(queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> tuple[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        return await queue.get()


def collect(topic: Any, *events: str) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for event in events:
        topic.on(event, lambda payload, e=event: queue.put_nowait((e, payload)))
    return queue


async def test_a_join_is_refused_with_the_topics_reason(serve: Serve) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        with pytest.raises(JoinError) as info:
            await socket.topic("room:vip").join()
        assert info.value.reason == "wrong_password"
        assert socket.topic("room:vip").state == "closed"
        assert await socket.topic("room:vip", {"password": "sesame"}).join() == {"slug": "vip"}
        with pytest.raises(JoinError, match="unknown_topic"):
            await socket.topic("nowhere:x").join()
        with pytest.raises(JoinError, match="unauthorized"):  # a sync join returning False
            await socket.topic("plain:a", {"refuse": True}).join()
        plain = socket.topic("plain:b")
        assert await plain.join() == {}
        reply = await plain.push("where")  # a sync handle_in: off the event loop
        assert reply["thread"] != threading.current_thread().name
        announced = collect(plain, "announced")
        assert await plain.push("announce", {"a": 1}) == {}
        assert await next_event(announced) == ("announced", {"a": 1})
    finally:
        await socket.close()


async def test_push_replies_ok_and_error_and_a_push_without_reply_times_out(serve: Serve) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        room = socket.topic("room:lobby")
        await room.join()
        assert await room.push("echo", {"n": 1}) == {"n": 1}
        with pytest.raises(PushError) as info:
            await room.push("fail")
        assert info.value.reason == "asked to fail"
        with pytest.raises(PushError, match="unhandled_event"):
            await room.push("no_such_event")
        with pytest.raises(PushTimeout):
            await room.push("silence", timeout=0.3)
        assert await room.push("echo", {"n": 2}) == {"n": 2}  # the socket lives on
    finally:
        await socket.close()


async def test_two_topics_share_one_socket_and_each_gets_only_its_own(serve: Serve) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        a, b = socket.topic("room:a"), socket.topic("room:b")
        await a.join()
        await b.join()
        got_a, got_b = collect(a, "said"), collect(b, "said")
        await a.push("say", {"body": "to a"})
        await b.push("say", {"body": "to b"})
        assert await next_event(got_a) == ("said", {"body": "to a"})
        assert await next_event(got_b) == ("said", {"body": "to b"})
        await a.leave()
        await b.push("say", {"body": "b again"})
        assert await next_event(got_b) == ("said", {"body": "b again"})
        assert got_a.empty()
        assert socket.connections == 1
    finally:
        await socket.close()


async def test_broadcast_from_sync_code_reaches_every_member(serve: Serve) -> None:
    live = await serve(APP)
    one, two = await open_socket(live.ws("/")), await open_socket(live.ws("/"))
    try:
        rooms = [one.topic("room:news"), two.topic("room:news")]
        for room in rooms:
            await room.join()
        queues = [collect(room, "headline") for room in rooms]
        position = await sync_to_async(broadcast)("room:news", "headline", {"t": "hello"})
        assert position is not None  # Room keeps history
        for queue, room in zip(queues, rooms, strict=True):
            assert await next_event(queue) == ("headline", {"t": "hello"})
            assert room.position == tuple(position)
        with pytest.raises(RuntimeError):  # the sync one, called on the event loop
            broadcast("room:news", "headline", {})
        with pytest.raises(ValueError, match="reserved"):
            await sync_to_async(broadcast)("room:news", "reply", {})
    finally:
        await one.close()
        await two.close()


async def test_a_rejoin_with_its_position_gets_the_missed_messages_then_live_ones(
    serve: Serve,
) -> None:
    live = await serve(APP)
    first = await open_socket(live.ws("/"))
    room = first.topic("room:resume")
    await room.join()
    assert room.recovered is True
    seen = collect(room, "said")
    await room.push("say", {"body": 0})
    await next_event(seen)
    saved = room.position
    await first.close()
    for n in range(1, 4):  # missed while away
        await sync_to_async(broadcast)("room:resume", "said", {"body": n})

    second = await open_socket(live.ws("/"))
    try:
        again = second.topic("room:resume")
        again.position = saved
        got = collect(again, "said")
        await again.join()
        assert again.recovered is True
        await again.push("say", {"body": 4})  # live
        bodies = [(await next_event(got))[1]["body"] for _ in range(4)]
        assert bodies == [1, 2, 3, 4]
        assert again.position is not None
        assert saved is not None
        assert again.position[0] == saved[0] + 4
    finally:
        await second.close()


async def test_recovered_false_when_the_log_is_lost(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        room = socket.topic("room:lost")
        await room.join()
        await room.push("say", {"body": 1})
        await asyncio.sleep(0)
        await room.leave()
        await layer.flush()  # the log is gone (a Redis restart without persistence)
        await sync_to_async(broadcast)("room:lost", "said", {"body": 2})
        got = collect(room, "said")
        await room.join()
        assert room.recovered is False
        assert room.position is not None
        assert room.position[0] == 1
        assert got.empty()  # nothing replayed: the application reloads
    finally:
        await socket.close()


async def test_the_client_resumes_across_lost_connections_without_gap_or_duplicate(
    serve: Serve,
) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        room = socket.topic("room:flaky")
        await room.join()
        got = collect(room, "said")

        async def send_all() -> None:
            for n in range(40):
                await sync_to_async(broadcast)("room:flaky", "said", {"n": n})
                await asyncio.sleep(0.005)

        sender = asyncio.create_task(send_all())
        for _ in range(3):  # drop the connection under the sender's feet, three times
            await asyncio.sleep(0.03)
            ws = socket._ws
            if ws is not None:
                ws.transport.abort()
            await socket.wait_open(TIMEOUT)
        await sender
        numbers = [(await next_event(got))[1]["n"] for _ in range(40)]
        assert numbers == list(range(40))
        assert socket.connections >= 2
        await room.push("echo", {})  # joined again
        assert got.empty()
    finally:
        await socket.close()


async def test_joins_over_max_topics_are_refused(serve: Serve) -> None:
    app = TopicsConsumer.as_asgi(topics=[Room, Plain], max_topics=2)
    live = await serve(app)
    socket = await open_socket(live.ws("/"))
    try:
        await socket.topic("plain:1").join()
        await socket.topic("plain:2").join()
        with pytest.raises(JoinError, match="too_many_topics"):
            await socket.topic("plain:3").join()
        await socket.topic("plain:2").join()  # a rejoin replaces: still two
        await socket.topic("plain:1").leave()
        await socket.topic("plain:3").join()
    finally:
        await socket.close()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("nope", "invalid JSON"),
        ("[1,2,3]", "a frame must have 5 elements, not 3"),
        ('["1","1","room:a","join",{"params":[]}]', "join params must be an object"),
        ('[null,null,"room:a","join",{}]', "a join needs a ref"),
        ('["1","1","room:a","say",42]', "payload must be an object"),
    ],
)
async def test_bad_frames_close_the_socket_with_4400(serve: Serve, frame: str, reason: str) -> None:
    live = await serve(APP)
    async with ws_connect(live.ws("/"), ["channelworks.v1"]) as ws:
        await ws.send(frame)
        assert await closed(ws) == (4400, reason)


async def test_heartbeats_are_answered_and_a_silent_socket_is_closed_with_4408(
    serve: Serve,
) -> None:
    live = await serve(TopicsConsumer.as_asgi(topics=[Room], heartbeat_interval=0.2))
    async with ws_connect(live.ws("/"), ["channelworks.v1"]) as ws:
        for ref in ("1", "2", "3"):  # talking keeps it open past two intervals
            await ws.send(json.dumps([None, ref, "$", "heartbeat", {}]))
            reply = json.loads(await recv_text(ws))
            assert reply == [None, ref, "$", "reply", {"status": "ok", "response": {}}]
            await asyncio.sleep(0.15)
        assert await closed(ws) == (4408, "heartbeat timeout")


async def test_pushes_on_a_topic_not_joined_or_reserved_events_get_error_replies(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    live = await serve(APP)
    async with ws_connect(live.ws("/"), ["channelworks.v1"]) as ws:

        async def ask(frame: list[Any]) -> Any:
            await ws.send(json.dumps(frame))
            return json.loads(await recv_text(ws))

        assert (await ask(["9", "1", "room:x", "say", {}]))[4] == {
            "status": "error",
            "response": {"reason": "unmatched_topic"},
        }
        joined = await ask(["2", "2", "room:x", "join", {}])
        assert joined[:4] == ["2", "2", "room:x", "reply"]
        assert joined[4]["status"] == "ok"
        if "presence" in layer.extensions:
            assert json.loads(await recv_text(ws))[3] == "presence_state"
        stale = await ask(["1", "3", "room:x", "echo", {}])  # an old join_ref
        assert stale[4]["response"] == {"reason": "unmatched_topic"}
        reserved = await ask(["2", "4", "room:x", "presence_diff", {}])
        assert reserved[4]["response"] == {"reason": "reserved_event"}
        assert (await ask(["2", "5", "room:x", "echo", {"a": 1}]))[4] == {
            "status": "ok",
            "response": {"a": 1},
        }
        assert (await ask([None, "6", "room:x", "leave", {}]))[4]["status"] == "ok"


async def test_a_crashing_handler_errors_the_topic_and_the_client_rejoins(
    serve: Serve, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("channelworks.topics.consumer._crashes_logged", set())
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        room = socket.topic("room:crashy")
        await room.join()
        errors = collect(room, "error")
        with pytest.raises(PushTimeout):
            await room.push("crash", timeout=0.5)
        assert await next_event(errors) == ("error", {"reason": "crashed"})
        await room.wait_joined(TIMEOUT)  # rejoined after a backoff
        assert await room.push("echo", {"x": 1}) == {"x": 1}
        assert "Room.handle_in failed on 'room:crashy'" in caplog.text
    finally:
        await socket.close()


async def test_a_topic_closed_by_the_server_is_not_rejoined(serve: Serve) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        room = socket.topic("room:kick")
        await room.join()
        closes = collect(room, "close")
        with pytest.raises(PushTimeout):
            await room.push("kick_me", timeout=0.5)
        assert await next_event(closes) == ("close", {"reason": "kicked"})
        assert room.state == "closed"
        with pytest.raises(PushTimeout):  # waits for a join that never comes
            await room.push("echo", {}, timeout=0.3)
        await room.join()  # the application may join again on purpose
        assert await room.push("echo", {"y": 2}) == {"y": 2}
    finally:
        await socket.close()


async def test_a_push_to_this_socket_alone_has_no_position(serve: Serve) -> None:
    live = await serve(APP)
    one, two = await open_socket(live.ws("/")), await open_socket(live.ws("/"))
    try:
        mine, theirs = one.topic("room:w"), two.topic("room:w")
        await mine.join()
        await theirs.join()
        frames: list[Frame] = []
        original = mine._receive

        async def spy(frame: Frame) -> None:
            frames.append(frame)
            await original(frame)

        mine._receive = spy  # type: ignore[method-assign]
        got, other = collect(mine, "whispered"), collect(theirs, "whispered")
        await mine.push("whisper", {"body": "psst"})
        assert await next_event(got) == ("whispered", {"body": "psst"})
        assert [f.position for f in frames if f.event == "whispered"] == [None]
        await theirs.push("echo", {})
        assert other.empty()
    finally:
        await one.close()
        await two.close()


async def test_presence_state_on_join_then_diffs(serve: Serve, layer: InMemoryChannelLayer) -> None:
    if "presence" not in layer.extensions:
        pytest.skip("this layer has no presence yet")
    live = await serve(APP)
    one, two = await open_socket(live.ws("/")), await open_socket(live.ws("/"))
    try:
        ada = one.topic("room:p", {"nick": "ada"})
        states = collect(ada, "presence_state", "presence_diff")
        await ada.join()
        await next_event(states)
        while "ada" not in ada.presence:
            await next_event(states)
        bob = two.topic("room:p", {"nick": "bob"})
        bob_states = collect(bob, "presence_state")
        await bob.join()
        await next_event(bob_states)
        assert set(bob.presence) >= {"ada"}
        while "bob" not in ada.presence:
            await next_event(states)
        assert [m["nick"] for m in ada.presence["bob"]] == ["bob"]
        assert all("phx_ref" in m for m in ada.presence["bob"])
        await bob.leave()
        while "bob" in ada.presence:
            await next_event(states)
        await two.close()
        assert set(ada.presence) == {"ada"}
    finally:
        await one.close()
        await two.close()


async def test_presence_of_a_socket_that_disconnects_is_dropped(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    if "presence" not in layer.extensions:
        pytest.skip("this layer has no presence yet")
    live = await serve(APP)
    one, two = await open_socket(live.ws("/")), await open_socket(live.ws("/"))
    try:
        ada = one.topic("room:q", {"nick": "ada"})
        changes = collect(ada, "presence_state", "presence_diff")
        await ada.join()
        await two.topic("room:q", {"nick": "bob"}).join()
        while "bob" not in ada.presence:
            await next_event(changes)
        await two.close()
        while "bob" in ada.presence:
            await next_event(changes)
        assert list(ada.presence) == ["ada"]
    finally:
        await one.close()


async def test_the_msgpack_subprotocol_carries_the_same_protocol(serve: Serve) -> None:
    live = await serve(APP)
    socket = await open_socket(live.ws("/"), subprotocol=MSGPACK_SUBPROTOCOL)
    try:
        room = socket.topic("room:bin")
        await room.join()
        got = collect(room, "said")
        await room.push("say", {"body": "é"})
        assert await next_event(got) == ("said", {"body": "é"})
        assert room.position is not None
    finally:
        await socket.close()


async def test_a_client_offering_only_other_subprotocols_is_refused(serve: Serve) -> None:
    live = await serve(APP)
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(live.ws("/"), ["graphql-ws"]):
            pass
    assert info.value.response.status_code == 403


async def test_login_required_closes_anonymous_sockets_with_4403_and_the_client_stops(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    live = await serve(TopicsConsumer.as_asgi(topics=[Room], login_required=True))
    socket = await open_socket(live.ws("/"))
    assert await socket.wait_stopped(TIMEOUT) == 4403
    assert socket.close_reason == "login required"
    assert socket.connections == 1
    assert "could not send its close frame" not in caplog.text  # closed once


async def test_observers_see_joins_refusals_pushes_replies_and_leaves(serve: Serve) -> None:
    seen: list[tuple[Any, ...]] = []

    class Recorder(TopicsObserver):
        def joined(self, pattern: str, topic: str, *, recovered: bool | None) -> None:
            seen.append(("joined", pattern, topic, recovered))

        def refused(self, pattern: str | None, topic: str, reason: str) -> None:
            seen.append(("refused", pattern, topic, reason))

        def pushed(self, pattern: str, topic: str, event: str) -> None:
            seen.append(("pushed", pattern, event))

        def replied(
            self, pattern: str, topic: str, event: str, status: str, seconds: float
        ) -> None:
            seen.append(("replied", event, status))

        def left(self, pattern: str, topic: str, reason: str) -> None:
            seen.append(("left", topic, reason))

        def broadcast(self, topic: str, event: str) -> None:
            raise RuntimeError("an observer's own bug")  # logged, never disturbs

    recorder = Recorder()
    observers.add(recorder)
    live = await serve(APP)
    socket = await open_socket(live.ws("/"))
    try:
        await socket.topic("plain:o").join()
        with pytest.raises(JoinError):
            await socket.topic("room:vip").join()
        room = socket.topic("room:o")
        await room.join()
        await room.push("say", {"body": 1})
        await room.leave()
    finally:
        await socket.close()
        observers.remove(recorder)
    assert seen == [
        ("joined", "plain:{name}", "plain:o", None),
        ("refused", "room:{slug}", "room:vip", "wrong_password"),
        ("joined", "room:{slug}", "room:o", True),
        ("pushed", "room:{slug}", "say"),
        ("replied", "say", "ok"),
        ("left", "room:o", "leave"),
        ("left", "plain:o", "disconnect"),
    ]


async def test_the_client_reconnects_when_heartbeat_replies_stop() -> None:
    from websockets.asyncio.server import ServerConnection, serve

    accepted: list[ServerConnection] = []
    third = asyncio.Event()

    async def mute(ws: ServerConnection) -> None:  # reads everything, answers nothing
        accepted.append(ws)
        if len(accepted) == 3:
            third.set()
        with contextlib.suppress(ConnectionClosed):  # the client aborts it
            async for _ in ws:
                pass

    async with serve(mute, "127.0.0.1", 0, subprotocols=["channelworks.v1"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        socket = await open_socket(f"ws://127.0.0.1:{port}/", heartbeat_interval=0.1)
        try:
            async with asyncio.timeout(TIMEOUT):
                await third.wait()  # the client gave up on two connections
        finally:
            await socket.close()
    assert len(accepted) >= 3


async def test_pushes_over_the_connection_limits_close_with_1008_and_the_client_reconnects(
    serve: Serve,
) -> None:
    limits = {"messages_per_second": 10, "message_burst": 3}
    live = await serve(TopicsConsumer.as_asgi(topics=[Room], limits=limits))
    socket = await open_socket(live.ws("/"))
    try:
        room = socket.topic("room:flood")
        await room.join()
        flood = [asyncio.create_task(room.push("echo", {}, timeout=TIMEOUT)) for _ in range(6)]
        results = await asyncio.gather(*flood, return_exceptions=True)
        assert any(isinstance(r, Disconnected) for r in results)
        assert socket.close_code == 1008
        # Reconnects (with backoff; the limits may refuse the first ones: a reconnecting
        # flooder keeps its debt, docs/limits.md) until the topic is joined again.
        await room.wait_joined(2 * TIMEOUT)
        assert socket.connections >= 2
    finally:
        await socket.close()


class _OnPort(pysocket.socket):
    """A listening socket that binds ``port`` (reusable) whatever ``Uvicorn`` asks for."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)

    def bind(self, address: Any) -> None:
        super().bind((address[0], self.port))


class UvicornOnPort(Uvicorn):
    """``Uvicorn`` on a given port (to restart a server where its clients expect it)."""

    def __init__(self, app: Any, port: int) -> None:
        super().__init__(app)
        self._sock.close()  # the default one, replaced
        self._sock = _OnPort(port)


async def test_a_client_resumes_after_the_server_restarts() -> None:
    first = UvicornOnPort(APP, 0)
    live = await first.start()
    socket = await open_socket(live.ws("/"))
    second = None
    try:
        room = socket.topic("room:restart")
        got = collect(room, "said")
        await room.join()
        await abroadcast("room:restart", "said", {"n": 1})
        assert (await next_event(got))[1] == {"n": 1}
        await first.stop()  # the clients see 1012
        assert socket.close_code == 1012
        for n in (2, 3):  # while no server runs
            await abroadcast("room:restart", "said", {"n": n})
        second = UvicornOnPort(APP, live.port)
        await second.start()
        numbers = [(await next_event(got))[1]["n"] for _ in range(2)]
        assert numbers == [2, 3]
        assert room.recovered is True
        await abroadcast("room:restart", "said", {"n": 4})
        assert (await next_event(got))[1] == {"n": 4}
    finally:
        await socket.close()
        if second is not None:
            await second.stop()


async def test_closing_a_client_that_waits_to_reconnect_ends_at_once() -> None:
    server = Uvicorn(APP)
    live = await server.start()
    socket = await open_socket(live.ws("/"), backoff_base=60, backoff_max=60)
    await server.stop()  # the client now waits up to a minute before trying again
    async with asyncio.timeout(TIMEOUT):
        await socket.close()
    assert socket.state == "closed"


async def test_a_join_made_while_disconnected_happens_on_the_next_connection() -> None:
    first = UvicornOnPort(APP, 0)
    live = await first.start()
    socket = await open_socket(live.ws("/"))
    second = None
    try:
        await first.stop()
        room = socket.topic("room:later")
        with pytest.raises(Disconnected):
            await room.join()
        second = UvicornOnPort(APP, live.port)
        await second.start()
        await room.wait_joined(TIMEOUT)
        assert await room.push("echo", {"now": 1}) == {"now": 1}
    finally:
        await socket.close()
        if second is not None:
            await second.stop()


async def test_an_endpoint_without_a_channel_layer_refuses_handshakes(
    serve: Serve, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelworks.layers import channel_layers
    from channelworks.logs import AggregatedLog

    monkeypatch.setattr("channelworks.topics.consumer._log", AggregatedLog())
    channel_layers.configure({})
    live = await serve(APP)
    for _ in range(2):
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(live.ws("/"), ["channelworks.v1"]):
                pass
        assert info.value.response.status_code == 403
    lines = [r for r in caplog.records if "needs a channel layer" in r.getMessage()]
    assert len(lines) == 1  # aggregated
