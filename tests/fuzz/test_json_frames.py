"""WebSocket frames sent to the JSON consumers: anything a client can put in a frame.

A frame that is not JSON closes its sender with 1007; a good one is answered; in both cases
every other connection carries on as if nothing happened.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import assume, given

from channelworks.consumers import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Message
from tests.fuzz.strategies import fuzz_settings, json_documents, ws_frames

#: RFC 6455 "invalid frame payload data": what a frame that is not JSON gets
INVALID_PAYLOAD = 1007


class AsyncEcho(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any) -> None:
        await self.send_json({"echo": content})


class SyncEcho(JsonWebsocketConsumer):
    def receive_json(self, content: Any) -> None:
        self.send_json({"echo": content})


CONSUMERS = [AsyncEcho, SyncEcho]


@asynccontextmanager
async def two_clients(consumer: type[Any]) -> AsyncIterator[tuple[WebsocketCommunicator, ...]]:
    """An offender and a bystander, both connected to ``consumer``."""
    offender = WebsocketCommunicator(consumer.as_asgi(), "/")
    bystander = WebsocketCommunicator(consumer.as_asgi(), "/")
    assert (await offender.connect())[0]
    assert (await bystander.connect())[0]
    try:
        yield offender, bystander
    finally:
        await bystander.disconnect()


def decoded(frame: Message) -> tuple[bool, Any]:
    """What a JSON decoder makes of the frame: (True, document) or (False, None)."""
    data = frame.get("text")
    if data is None:
        data = frame.get("bytes")
    if data is None:
        return False, None
    try:
        return True, json.loads(data)
    except ValueError:
        return False, None


#: documents nested deeper than this are left to the deep-JSON test below: near the stack's
#: limit, whether one decodes depends on how deep the decoder already is (a thread, a task)
DEEP = 500


def nesting(frame: Message) -> int:
    """How deep the brackets of the frame's payload nest, outside JSON strings."""
    data = frame.get("text") or frame.get("bytes") or ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for char in data:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


async def expect_echo(client: WebsocketCommunicator, document: Any) -> None:
    reply = await client.receive_output()
    assert reply["type"] == "websocket.send", reply
    # Compared as text: the consumer's encoder is json.dumps too, and a document nested
    # almost to the stack's limit must not be walked again here.
    assert reply["text"] == json.dumps({"echo": document})


@pytest.mark.parametrize("consumer", CONSUMERS)
@fuzz_settings(max_examples=300)
@given(frame=ws_frames())
async def test_a_frame_closes_at_most_its_sender(consumer: type[Any], frame: Message) -> None:
    """Any frame is answered if it is JSON, else closes its sender with 1007, and never
    disturbs another connection."""
    assume(nesting(frame) < DEEP)
    async with two_clients(consumer) as (offender, bystander):
        await offender.send_input(frame)
        ok, document = decoded(frame)
        if ok:
            await expect_echo(offender, document)
            await offender.disconnect()
        else:
            reply = await offender.receive_output()
            assert reply == {"type": "websocket.close", "code": INVALID_PAYLOAD, **reply}
            assert reply["code"] == INVALID_PAYLOAD
            await offender.wait()
        await bystander.send_json_to({"still": "here"})
        await expect_echo(bystander, {"still": "here"})


@pytest.mark.parametrize("consumer", CONSUMERS)
@fuzz_settings(max_examples=100)
@given(document=json_documents())
async def test_every_json_document_comes_back_equal(consumer: type[Any], document: Any) -> None:
    """A JSON document sent as text or as UTF-8 bytes reaches receive_json equal."""
    async with two_clients(consumer) as (client, _):
        await client.send_to(text_data=json.dumps(document))
        await expect_echo(client, document)
        await client.send_to(bytes_data=json.dumps(document).encode())
        await expect_echo(client, document)
        await client.disconnect()


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000]
)
async def test_deep_json_closes_its_sender_with_1007(consumer: type[Any], text: str) -> None:
    """A document nested past the interpreter's stack is bad input: 1007, not 1011
    (issue #13 item 4; RecursionError closed it with 1011 and a traceback)."""
    assert nesting({"text": text}) > sys.getrecursionlimit()
    async with two_clients(consumer) as (offender, bystander):
        await offender.send_to(text_data=text)
        reply = await offender.receive_output()
        assert reply["type"] == "websocket.close"
        assert reply["code"] == INVALID_PAYLOAD
        await bystander.send_json_to({"still": "here"})
        await expect_echo(bystander, {"still": "here"})
