"""A hostile client against the topics endpoint: whatever it sends, it alone is closed (4400)
or answered with an error, and the other sockets of its topics keep being served."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from channelworks.exceptions import CloseConnection, LayerUnavailable
from channelworks.layers import InMemoryChannelLayer
from channelworks.logs import AggregatedLog
from channelworks.testing import WebsocketCommunicator
from channelworks.topics import JoinRefused, Topic, TopicsConsumer, abroadcast
from channelworks.topics.frames import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from tests.topics.apps import Room

APP = TopicsConsumer.as_asgi(topics=[Room], heartbeat_interval=None)


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the first (logged) line of its warnings."""
    monkeypatch.setattr("channelworks.topics.consumer._log", AggregatedLog())


class Member:
    """A raw socket of one subprotocol that joined ``room:x``."""

    def __init__(self, subprotocol: str) -> None:
        self.binary = subprotocol == MSGPACK_SUBPROTOCOL
        self.client = WebsocketCommunicator(APP, "/", subprotocols=[subprotocol])

    async def start(self) -> Member:
        assert (await self.client.connect())[0]
        await self.send(["1", "1", "room:x", "join", {}])
        assert (await self.next())[3] == "reply"
        assert (await self.next())[3] == "presence_state"
        return self

    async def send(self, items: Any) -> None:
        if self.binary:
            await self.client.send_to(bytes_data=msgpack.packb(items, use_bin_type=True))
        else:
            await self.client.send_to(text_data=json.dumps(items))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.client.send_to(text_data=text, bytes_data=data)

    async def next(self) -> Any:
        message = await self.client.receive_output(1)
        if message["type"] == "websocket.close":
            return ("closed", message.get("code"), message.get("reason"))
        data = message.get("bytes")
        return msgpack.unpackb(data) if data is not None else json.loads(message["text"])

    async def said(self, body: Any) -> Any:
        """Say ``body`` on the topic and return the broadcast this socket got back."""
        await self.send(["1", "9", "room:x", "say", {"body": body}])
        frames = [await self.next(), await self.next()]
        return next(f[4]["body"] for f in frames if f[3] == "said")


async def members() -> tuple[Member, Member]:
    return await Member(JSON_SUBPROTOCOL).start(), await Member(MSGPACK_SUBPROTOCOL).start()


@pytest.mark.parametrize(
    ("sender", "raw", "reason"),
    [
        (
            "msgpack",
            msgpack.packb(["1", "2", "room:x", "say", {"body": msgpack.ExtType(5, b"ab")}]),
            "payload has a value of a type JSON does not have (ExtType)",
        ),
        (
            "msgpack",
            msgpack.packb(["1", "2", "room:x", "say", {"body": {b"k": 1}}], use_bin_type=True),
            "payload has an object key that is not a string",
        ),
        (
            "json",
            '["1","2","room:x","say",{"body":NaN}]',
            "payload has a number that is not finite (NaN or Infinity)",
        ),
        (
            "json",
            '["1","2","room:x","say",{"body":-1e400}]',
            "payload has a number that is not finite (NaN or Infinity)",
        ),
        (
            "json",
            '["1","2","room:x","say",{"body":1' + "0" * 400 + "}]",
            "payload has an integer beyond 64 bits",
        ),
        (
            "json",
            '["1","2","room:\\ud800","join",{}]',
            "topic is not valid Unicode (a lone surrogate)",
        ),
        (
            "json",
            '["1","2","room:x","say",{"body":' + "[" * 100 + "]" * 100 + "}]",
            "payload nested deeper than 100 levels",
        ),
    ],
    ids=[
        "ext",
        "bin-key",
        "nan",
        "infinity",
        "beyond-double",
        "topic",
        "deep",
    ],
)
async def test_a_payload_only_one_subprotocol_could_carry_closes_its_sender_alone(
    sender: str, raw: str | bytes, reason: str
) -> None:
    json_member, msgpack_member = await members()
    bad, other = (
        (json_member, msgpack_member) if sender == "json" else (msgpack_member, json_member)
    )
    if isinstance(raw, str):
        await bad.send_raw(text=raw)
    else:
        await bad.send_raw(data=raw)
    assert await bad.next() == ("closed", 4400, reason)
    assert await other.said("still here") == "still here"  # nothing reached it, it serves on
    await other.client.disconnect()


async def test_the_largest_portable_values_go_through_both_subprotocols() -> None:
    json_member, msgpack_member = await members()
    body = {"big": 2**64 - 1, "small": -(2**63), "deep": [[[[1.5]]]], "text": "é\u2603"}
    assert await json_member.said(body) == body
    assert (await msgpack_member.next())[4] == {"body": body}


async def test_json_text_is_read_as_javascript_reads_it() -> None:
    """``JSON.stringify`` writes 1e20 as an integer and escapes a lone surrogate (a string cut
    inside a pair): both are what a browser may send, so they are read as a browser would
    read them back (a float, U+FFFD) instead of closing the socket."""
    json_member, msgpack_member = await members()
    await json_member.send_raw(
        text='["1","2","room:x","say",{"body":[100000000000000000000,"a\\ud83d"]}]'
    )
    said = [f for f in [await json_member.next(), await json_member.next()] if f[3] == "said"]
    assert said[0][4]["body"] == [1e20, "a\ufffd"]
    assert (await msgpack_member.next())[4]["body"] == [1e20, "a\ufffd"]


async def test_binaries_reach_msgpack_members_and_json_members_skip_them_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    json_member, msgpack_member = await members()
    with caplog.at_level(logging.WARNING, "channelworks.topics"):
        assert await msgpack_member.said(b"\x00\xff") == b"\x00\xff"
        assert await json_member.client.receive_nothing(0.1)  # not a 1011 close: nothing
    assert "channelworks.v1 cannot carry (TypeError; last: 'said' on 'room:x')" in caplog.text
    assert await json_member.said("next") == "next"  # the JSON socket serves on
    assert (await msgpack_member.next())[4] == {"body": "next"}


class Odd(Topic):
    """Hands back what JSON cannot carry, as an application might by mistake."""

    pattern = "odd:{x}"

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        if event == "broadcast":
            await self.broadcast("odd", {"v": float("nan")})
        return {"v": float("inf")}


async def test_an_application_value_json_cannot_carry_is_an_error_reply_and_a_dropped_push(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    app = TopicsConsumer.as_asgi(topics=[Odd], heartbeat_interval=None)
    client = WebsocketCommunicator(app, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", "odd:a", "join", {}])
    assert (await client.receive_json_from())[4]["status"] == "ok"
    with caplog.at_level(logging.WARNING, "channelworks.topics"):
        await client.send_json_to(["1", "2", "odd:a", "broadcast", {}])
        reply = await client.receive_json_from()
        assert await client.receive_nothing(0.1)  # the NaN push is dropped, not sent as NaN
    assert reply == [
        "1",
        "2",
        "odd:a",
        "reply",
        {"status": "error", "response": {"reason": "unencodable_reply"}},
    ]
    assert "Dropped 1 frame(s) that channelworks.v1 cannot carry (ValueError" in caplog.text
    await abroadcast("odd:a", "fine", {"v": 1}, layer=layer)
    assert (await client.receive_json_from())[3:5] == ["fine", {"v": 1}]
    await client.disconnect()


class Tracked(Topic):
    """Tracks what the client sends, as an application trusting its input might."""

    pattern = "tracked:{x}"
    presence = True

    async def join(self, params: dict[str, Any]) -> dict[str, Any]:
        await self.track(str(params.get("nick", "someone")), params.get("meta", {}))
        return {}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        await self.track(str(payload.get("nick")), payload.get("meta", {}))
        return {"tracked": True}


async def test_a_presence_the_layer_refuses_is_an_error_reply_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = TopicsConsumer.as_asgi(topics=[Tracked], heartbeat_interval=None)
    client = WebsocketCommunicator(app, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    with caplog.at_level(logging.WARNING, "channelworks.topics"):
        await client.send_json_to(["1", "1", "tracked:a", "join", {"params": {"nick": "n" * 300}}])
        refused = await client.receive_json_from()
        assert refused[4] == {"status": "error", "response": {"reason": "invalid_presence"}}
        await client.send_json_to(["2", "2", "tracked:a", "join", {"params": {"nick": "ada"}}])
        assert (await client.receive_json_from())[4]["status"] == "ok"
        assert (await client.receive_json_from())[3] == "presence_state"
        meta = {"phx_ref": "forged"}  # the layer sets phx_ref itself
        await client.send_json_to(["2", "3", "tracked:a", "update", {"nick": "ada", "meta": meta}])
        reply = await client.receive_json_from()
    assert reply[4] == {"status": "error", "response": {"reason": "invalid_presence"}}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # not a crash
    assert "refused by the layer's presence" in caplog.text
    await client.send_json_to(["2", "4", "tracked:a", "update", {"nick": "ada", "meta": {"a": 1}}])
    assert (await client.receive_json_from())[4] == {"status": "ok", "response": {"tracked": True}}
    await client.disconnect()


async def test_a_refused_rejoin_leaves_no_way_in_through_the_earlier_join(
    layer: InMemoryChannelLayer,
) -> None:
    client = WebsocketCommunicator(APP, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", "room:vip", "join", {"params": {"password": "sesame"}}])
    assert (await client.receive_json_from())[4]["status"] == "ok"
    assert (await client.receive_json_from())[3] == "presence_state"
    await client.send_json_to(["2", "2", "room:vip", "join", {"params": {"password": "guess"}}])
    refused = await client.receive_json_from()
    assert refused[4] == {"status": "error", "response": {"reason": "wrong_password"}}
    for join_ref in ("1", "2"):  # neither the earlier join nor the refused one lets it push
        await client.send_json_to([join_ref, "3", "room:vip", "say", {"body": "hi"}])
        reply = await client.receive_json_from()
        assert reply[4] == {"status": "error", "response": {"reason": "unmatched_topic"}}
    await abroadcast("room:vip", "said", {"body": "secret"}, layer=layer)
    assert await client.receive_nothing(0.1)  # and it gets nothing of the topic
    await client.disconnect()


async def test_a_handler_slower_than_two_heartbeat_intervals_is_not_the_client_s_silence() -> None:
    app = TopicsConsumer.as_asgi(topics=[Room], heartbeat_interval=0.1)
    client = WebsocketCommunicator(app, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", "room:x", "join", {}])
    assert (await client.receive_json_from())[4]["status"] == "ok"
    assert (await client.receive_json_from())[3] == "presence_state"
    await client.send_json_to(["1", "2", "room:x", "slow", {"seconds": 0.5}])
    for n in range(8):  # the client heartbeats all along; the frames wait for the handler
        await asyncio.sleep(0.05)
        await client.send_json_to([None, f"h{n}", "$", "heartbeat", {}])
    assert (await client.receive_json_from())[1] == "2"
    for n in range(8):
        assert (await client.receive_json_from())[1] == f"h{n}"  # answered, not closed 4408
    assert (await client.receive_output(1))["code"] == 4408  # silent from then on: closed


class Greeter(Topic):
    """Pushes in its join, as a careless application does (Phoenix forbids it)."""

    pattern = "greet:{x}"

    async def join(self, params: dict[str, Any]) -> dict[str, Any]:
        await self.push("welcome", {"to": self.params["x"]})
        if params.get("refuse"):
            raise JoinRefused("no")
        return {"joined": True}


async def test_a_push_made_in_join_reaches_the_client_after_the_ok_reply() -> None:
    app = TopicsConsumer.as_asgi(topics=[Greeter], heartbeat_interval=None)
    client = WebsocketCommunicator(app, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", "greet:ada", "join", {}])
    reply = await client.receive_json_from()
    assert reply[3:5] == ["reply", {"status": "ok", "response": {"response": {"joined": True}}}]
    assert await client.receive_json_from() == ["1", None, "greet:ada", "welcome", {"to": "ada"}]
    await client.send_json_to(["2", "2", "greet:bob", "join", {"params": {"refuse": True}}])
    refused = await client.receive_json_from()
    assert refused[4] == {"status": "error", "response": {"reason": "no"}}
    assert await client.receive_nothing(0.1)  # a refused join's pushes go nowhere
    await client.disconnect()


class Bouncer(Topic):
    """Closes the whole socket from its hooks, as docs/consumers.md allows in any handler."""

    pattern = "door:{x}"

    async def join(self, params: dict[str, Any]) -> None:
        if params.get("close"):
            raise CloseConnection(4403, "not here")

    async def handle_in(self, event: str, payload: dict[str, Any]) -> None:
        raise CloseConnection(4403, "banned")


@pytest.mark.parametrize("hook", ["join", "handle_in"])
async def test_close_connection_raised_in_a_topic_hook_closes_the_socket_with_its_code(
    layer: InMemoryChannelLayer, hook: str
) -> None:
    app = TopicsConsumer.as_asgi(topics=[Bouncer], heartbeat_interval=None)
    client = WebsocketCommunicator(app, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", "door:a", "join", {"params": {"close": hook == "join"}}])
    if hook == "handle_in":
        assert (await client.receive_json_from())[4]["status"] == "ok"
        await client.send_json_to(["1", "2", "door:a", "knock", {}])
    closed = await client.receive_output(1)
    reason = "not here" if hook == "join" else "banned"
    assert (closed["type"], closed["code"], closed["reason"]) == ("websocket.close", 4403, reason)
    await client.wait(1)
    assert layer.group_names() == []


async def test_a_join_the_layer_cannot_serve_closes_the_socket_1011_so_the_client_retries(
    layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal would close the topic for good on the client (it never rejoins a refused
    topic); a layer outage is not the topic refusing, so the socket closes with 1011 and
    the client reconnects with backoff and rejoins."""
    json_member = await Member(JSON_SUBPROTOCOL).start()  # joined before the outage
    add = layer.group_add

    async def unavailable(group: str, channel: str) -> None:
        raise LayerUnavailable("group_add", group, "redis://down", "timed out")

    monkeypatch.setattr(layer, "group_add", unavailable)
    client = WebsocketCommunicator(APP, "/", subprotocols=[JSON_SUBPROTOCOL])
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", "room:y", "join", {}])
    closed = await client.receive_output(1)
    assert (closed["type"], closed["code"]) == ("websocket.close", 1011)
    assert closed["reason"] == "channel layer unavailable"
    monkeypatch.setattr(layer, "group_add", add)
    assert await json_member.said("still here") == "still here"
