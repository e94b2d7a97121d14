"""The exposition moves with what connections, handlers and layers do (one process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from django.urls import path

from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.limits.stats import stats as limit_stats
from channelworks.metrics import render
from channelworks.ops.connections import MAX_CODES, MAX_TYPES, OTHER, Observer
from channelworks.routing import URLRouter
from channelworks.testing import WebsocketCommunicator
from tests.ops.exposition import samples, value

CONSUMER = f"{__name__}.Echo"
TIMEOUT = 5.0


class Echo(AsyncWebsocketConsumer):
    groups = ["room"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "fail":
            raise RuntimeError("asked to fail")
        if text_data == "bye":
            await self.close(4000)
            return
        await self.send(text_data=text_data, bytes_data=bytes_data)

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["text"])


class Refusing(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close()


app = URLRouter(
    [
        path("echo/", Echo.as_asgi(), name="echo"),
        path("refusing/", Refusing.as_asgi(), name="refusing"),
    ]
)


@pytest.fixture
def layer() -> Iterator[InMemoryChannelLayer]:
    layer = InMemoryChannelLayer(capacity=2)
    channel_layers.configure({})
    channel_layers.set("default", layer)
    yield layer
    channel_layers.configure(None)


async def test_connections_frames_and_bytes(layer: InMemoryChannelLayer) -> None:
    ws = WebsocketCommunicator(app, "/echo/")
    assert (await ws.connect())[0]
    text = render()
    assert value(text, "channelworks_connections_open", route="echo", protocol="websocket") == 1
    assert (
        value(text, "channelworks_connections_accepted_total", route="echo", protocol="websocket")
        == 1
    )
    await ws.send_to(text_data="hello")
    await ws.send_to(text_data="héllo")  # 6 bytes in UTF-8
    await ws.send_to(bytes_data=b"\x00\x01\x02")
    assert await ws.receive_from() == "hello"
    assert await ws.receive_from() == "héllo"
    assert await ws.receive_from() == b"\x00\x01\x02"
    await layer.group_send("room", {"type": "chat.message", "text": "from the group"})
    assert await ws.receive_from() == "from the group"
    text = render()  # counted while the connection is open
    assert value(text, "channelworks_frames_total", route="echo", direction="in") == 3
    assert value(text, "channelworks_frames_total", route="echo", direction="out") == 4
    assert value(text, "channelworks_frame_bytes_total", route="echo", direction="in") == 14
    assert value(text, "channelworks_frame_bytes_total", route="echo", direction="out") == 28
    await ws.disconnect(1001)
    text = render()
    assert value(text, "channelworks_connections_open", route="echo", protocol="websocket") == 0
    assert (
        value(
            text,
            "channelworks_connections_closed_total",
            route="echo",
            protocol="websocket",
            code="1001",
        )
        == 1
    )
    # the totals of an ended connection are kept: counters never go back
    assert value(text, "channelworks_frames_total", route="echo", direction="in") == 3
    assert value(text, "channelworks_frames_total", route="echo", direction="out") == 4
    receive = {"consumer": CONSUMER, "type": "websocket.receive"}
    # how many handler runs the histogram counted, by type (the times themselves are not
    # asserted: speed belongs in benchmarks/)
    assert handler_runs(text, **receive) == 3
    assert handler_runs(text, "_bucket", le="+Inf", **receive) == 3
    chat = {"consumer": CONSUMER, "type": "chat.message"}
    assert handler_runs(text, **chat) == 1


def handler_runs(text: str | bytes, part: str = "_count", **labels: str) -> float:
    """A count of the handler histogram (``_count``, or a ``_bucket`` with ``le``)."""
    return value(text, "channelworks_handler_duration_seconds" + part, **labels)


async def test_close_codes_and_handler_exceptions(layer: InMemoryChannelLayer) -> None:
    closing = WebsocketCommunicator(app, "/echo/")
    await closing.connect()
    await closing.send_to(text_data="bye")
    assert (await closing.receive_output())["code"] == 4000
    await closing.disconnect(4000)
    failing = WebsocketCommunicator(app, "/echo/")
    await failing.connect()
    await failing.send_to(text_data="fail")
    assert (await failing.receive_output())["code"] == 1011
    with pytest.raises(RuntimeError, match="asked to fail"):
        await failing.wait()
    text = render()
    closed = {"route": "echo", "protocol": "websocket"}
    assert value(text, "channelworks_connections_closed_total", code="4000", **closed) == 1
    assert value(text, "channelworks_connections_closed_total", code="1011", **closed) == 1
    assert (
        value(
            text,
            "channelworks_handler_exceptions_total",
            consumer=CONSUMER,
            type="websocket.receive",
            exception="RuntimeError",
        )
        == 1
    )
    assert value(text, "channelworks_connections_open", **closed) == 0


async def test_layer_and_limit_counters(layer: InMemoryChannelLayer) -> None:
    before = value(render(), "channelworks_layer_events_total", alias="default", event="group_full")
    channel = await layer.new_channel()
    await layer.group_add("full", channel)
    for _ in range(3):  # capacity 2: the third is skipped and counted
        await layer.group_send("full", {"type": "x"})
    limit_stats.rate_dropped += 2
    try:
        text = render()
    finally:
        limit_stats.rate_dropped -= 2
    assert value(text, "channelworks_layer_events_total", alias="default", event="group_full") == (
        before + 1
    )
    assert value(text, "channelworks_layer_events_total", alias="default", event="expired") == 0
    assert value(text, "channelworks_limit_events_total", event="rate_dropped") >= 2


class Blocking(WebsocketConsumer):
    """A sync consumer whose handler waits for the test to release it."""

    release = threading.Event()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.release.wait(TIMEOUT)
        self.send(text_data=text_data)


async def test_sync_pool_gauges_and_process_metrics(layer: InMemoryChannelLayer) -> None:
    ws = WebsocketCommunicator(Blocking.as_asgi(), "/blocking/")
    await ws.connect()
    Blocking.release.clear()
    await ws.send_to(text_data="wait")
    busy = 0.0
    for _ in range(100):  # until the worker has taken the call
        busy = value(render(), "channelworks_sync_pool_busy_threads")
        if busy:
            break
        await asyncio.sleep(0.01)
    text = render()
    Blocking.release.set()
    assert await ws.receive_from() == "wait"
    await ws.disconnect()
    assert busy >= 1
    assert value(text, "channelworks_sync_pool_threads") >= 1
    assert "\nchannelworks_sync_pool_queued " in text.decode()
    assert "\nprocess_cpu_seconds_total " in text.decode()  # the process collector is there


async def test_unobserved_when_off(layer: InMemoryChannelLayer) -> None:
    from channelworks.ops import configure

    configure(False)
    ws = WebsocketCommunicator(app, "/echo/")
    await ws.connect()
    await ws.send_to(text_data="hello")
    assert await ws.receive_from() == "hello"
    await ws.disconnect()
    text = render()
    assert value(text, "channelworks_frames_total", route="echo", direction="in") == 0


async def test_a_refused_handshake_is_counted_as_refused(layer: InMemoryChannelLayer) -> None:
    ws = WebsocketCommunicator(app, "/refusing/")
    assert (await ws.connect())[0] is False
    await ws.disconnect(1006)
    text = render()
    refusing = {"route": "refusing", "protocol": "websocket"}
    assert value(text, "channelworks_connections_closed_total", code="refused", **refusing) == 1
    assert value(text, "channelworks_connections_accepted_total", **refusing) == 0
    assert value(text, "channelworks_connections_open", **refusing) == 0


async def test_message_types_chosen_by_clients_cannot_grow_the_labels(
    layer: InMemoryChannelLayer, observer: Observer
) -> None:
    layer = InMemoryChannelLayer(capacity=1000)
    channel_layers.set("default", layer)
    ws = WebsocketCommunicator(app, "/echo/")
    await ws.connect()
    [connection] = observer.connections()
    channel = connection.channel_name
    assert channel is not None
    for index in range(MAX_TYPES + 50):  # types nobody handles: each is dropped with a log
        await layer.send(channel, {"type": f"client.chosen{index}"})
    await ws.send_to(text_data="after")  # handled after the layer messages were
    assert await ws.receive_from() == "after"
    await ws.disconnect()
    text = render()
    types = {
        dict(labels)["type"]
        for name, labels in samples(text)
        if name == "channelworks_handler_duration_seconds_count"
    }
    assert len(types) == MAX_TYPES + 1
    assert OTHER in types
    other = {"consumer": CONSUMER, "type": OTHER}
    assert handler_runs(text, **other) >= 50


async def test_group_fanout_histogram_and_presence_history_counters(
    layer: InMemoryChannelLayer,
) -> None:
    before = samples(render())

    def gained(text: bytes, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return samples(text).get(key, 0.0) - before.get(key, 0.0)

    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("fan", channel)
    await layer.group_send("fan", {"type": "x"})  # 3 members
    await layer.group_send("fan", {"type": "x"}, history=True)  # 3 again, and appended
    for channel in channels:  # capacity 2: read them, so that none is full
        for _ in range(2):
            await layer.receive(channel)
    await layer.group_discard("fan", channels[0])
    await layer.group_send("fan", {"type": "x"})  # 2
    await layer.history("fan")
    await layer.presence_track("fan", channels[1], "alice", {})
    text = render()
    fanout = "channelworks_group_fanout"
    assert gained(text, f"{fanout}_count", alias="default") == 3
    assert gained(text, f"{fanout}_sum", alias="default") == 8
    assert gained(text, f"{fanout}_bucket", alias="default", le="1.0") == 0
    assert gained(text, f"{fanout}_bucket", alias="default", le="2.0") == 1
    assert gained(text, f"{fanout}_bucket", alias="default", le="5.0") == 3
    assert gained(text, f"{fanout}_bucket", alias="default", le="+Inf") == 3
    events = "channelworks_layer_events_total"
    for event in ("history_appends", "history_reads", "presence_tracks"):
        assert gained(text, events, alias="default", event=event) == 1, event


async def test_a_layer_made_again_under_its_alias_counts_from_zero(
    layer: InMemoryChannelLayer,
) -> None:
    for _ in range(3):
        await layer.history("a")
    reads = {"alias": "default", "event": "history_reads"}
    before = value(render(), "channelworks_layer_events_total", **reads)
    again = InMemoryChannelLayer()
    channel_layers.set("default", again)
    await again.history("a")  # 1, below the 3 the first layer had counted
    assert value(render(), "channelworks_layer_events_total", **reads) == before + 1


async def test_close_codes_chosen_by_clients_cannot_grow_the_labels(
    layer: InMemoryChannelLayer, observer: Observer
) -> None:
    # A client may close with any code of 3000-4999: each was a new label value (a series
    # per route in Prometheus), 2,000 of them for whoever cared to reconnect that often.
    for code in (1001, 1011, *range(3000, 3000 + MAX_CODES + 30)):
        ws = WebsocketCommunicator(app, "/echo/")
        await ws.connect()
        await ws.disconnect(code)
    text = render()
    codes = {
        dict(labels)["code"]: count
        for (name, labels), count in samples(text).items()
        if name == "channelworks_connections_closed_total" and ("route", "echo") in labels
    }
    assert codes["1001"] == codes["1011"] == 1  # the protocol's own codes keep their labels
    assert codes[OTHER] == 30
    assert len(codes) == 2 + MAX_CODES + 1


def test_totals_read_while_a_route_appears() -> None:
    # The Django view serves /metrics from a worker thread while the event loop adds routes:
    # totals() iterated the live dict, so a route added between two steps of the iteration
    # (a thread switch) raised "dictionary changed size during iteration", a 500. The
    # interleaving is replayed here: reading one route's totals adds another.
    from channelworks.ops.connections import RouteTotals

    found = Observer()

    class Racing(RouteTotals):
        def __getattribute__(self, name: str) -> object:
            if name == "frames_in":
                found.totals_of(f"new{len(found.routes)}")  # what the loop does meanwhile
            return super().__getattribute__(name)

    found.routes["first"] = Racing()
    totals = found.totals()
    assert "first" in totals
