"""``channelworks.worker``: the worker core, with an injected in-memory layer and application.

No Django settings are needed here; every wait is bounded by ``TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

import pytest

from channelworks.consumers import AsyncConsumer, SyncConsumer
from channelworks.exceptions import InvalidChannelName
from channelworks.layers import InMemoryChannelLayer
from channelworks.routing import ChannelNameRouter, ProtocolTypeRouter
from channelworks.types import Message, Receive, Scope, Send
from channelworks.worker import Worker, require_worker_channel, serve, unrouted_channels
from tests.commands.waits import TIMEOUT, wait_until

CHANNEL = "thumbnail-generate"


async def finish(worker: Worker, run: asyncio.Task[None]) -> None:
    """Stop ``worker`` (once) and wait, bounded, for its ``run`` to return."""
    if not worker.stopping:
        worker.stop()
    async with asyncio.timeout(TIMEOUT):
        await run


class Recorder(AsyncConsumer):
    """Records ``(instance id, scope channel, n)`` for each ``job.run``; ``n == "boom"`` fails."""

    seen: list[tuple[int, str, object]] = []

    async def job_run(self, message: Message) -> None:
        if message["n"] == "boom":
            raise RuntimeError("boom")
        type(self).seen.append((id(self), self.scope["channel"], message["n"]))


class SyncRecorder(SyncConsumer):
    """``Recorder`` with a plain ``def`` handler, run in a worker thread."""

    seen: list[tuple[int, str, object]] = []

    def job_run(self, message: Message) -> None:
        type(self).seen.append((id(self), self.scope["channel"], message["n"]))


class Blocker(AsyncConsumer):
    """``job.run`` waits for ``release`` before recording; reports a cancellation."""

    started: asyncio.Event
    release: asyncio.Event
    done: list[object]
    cancelled: list[object]

    async def job_run(self, message: Message) -> None:
        type(self).started.set()
        try:
            await type(self).release.wait()
        except asyncio.CancelledError:
            type(self).cancelled.append(message["n"])
            raise
        type(self).done.append(message["n"])


@pytest.fixture
def layer() -> InMemoryChannelLayer:
    return InMemoryChannelLayer()


@pytest.fixture(autouse=True)
def _fresh_records() -> None:
    Recorder.seen = []
    SyncRecorder.seen = []
    Blocker.started = asyncio.Event()
    Blocker.release = asyncio.Event()
    Blocker.done = []
    Blocker.cancelled = []


def start(worker: Worker) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run())


@pytest.mark.parametrize("consumer", [Recorder, SyncRecorder])
async def test_messages_reach_the_consumer_in_order_on_one_instance(
    layer: InMemoryChannelLayer, consumer: type[Recorder] | type[SyncRecorder]
) -> None:
    app = ChannelNameRouter({CHANNEL: consumer.as_asgi()})
    worker = Worker(app, layer, [CHANNEL])
    run = start(worker)
    for n in range(20):
        await layer.send(CHANNEL, {"type": "job.run", "n": n})
    await wait_until(lambda: len(consumer.seen) == 20)
    await finish(worker, run)
    assert [n for _, _, n in consumer.seen] == list(range(20))
    assert {channel for _, channel, _ in consumer.seen} == {CHANNEL}
    assert len({instance for instance, _, _ in consumer.seen}) == 1  # one long-lived instance


async def test_each_channel_has_its_own_instance_and_scope(layer: InMemoryChannelLayer) -> None:
    app = ChannelNameRouter({"a-jobs": Recorder.as_asgi(), "b-jobs": Recorder.as_asgi()})
    worker = Worker(app, layer, ["a-jobs", "b-jobs"])
    run = start(worker)
    await layer.send("a-jobs", {"type": "job.run", "n": 1})
    await layer.send("b-jobs", {"type": "job.run", "n": 2})
    await layer.send("a-jobs", {"type": "job.run", "n": 3})
    await wait_until(lambda: len(Recorder.seen) == 3)
    await finish(worker, run)
    by_channel = {
        channel: [(i, n) for i, c, n in Recorder.seen if c == channel]
        for channel in ("a-jobs", "b-jobs")
    }
    assert [n for _, n in by_channel["a-jobs"]] == [1, 3]
    assert [n for _, n in by_channel["b-jobs"]] == [2]
    instance_a = {i for i, _ in by_channel["a-jobs"]}
    instance_b = {i for i, _ in by_channel["b-jobs"]}
    assert len(instance_a) == 1
    assert instance_a != instance_b


async def test_an_error_is_logged_and_the_next_message_handled_by_a_new_instance(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Recorder.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    for n in (1, "boom", 2):
        await layer.send(CHANNEL, {"type": "job.run", "n": n})
    with caplog.at_level(logging.ERROR, logger="channelworks.worker"):
        await wait_until(lambda: len(Recorder.seen) == 2)
    await finish(worker, run)
    assert [n for _, _, n in Recorder.seen] == [1, 2]
    before, after = (instance for instance, _, _ in Recorder.seen)
    assert before != after  # the failed instance ended; a fresh one took the next message
    [record] = [r for r in caplog.records if r.name == "channelworks.worker"]
    assert record.levelno == logging.ERROR
    assert CHANNEL in record.getMessage()
    assert "'job.run'" in record.getMessage()
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom"


async def test_an_unhandled_type_is_logged_with_its_type_and_the_worker_goes_on(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Recorder.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    await layer.send(CHANNEL, {"type": "no.such.handler"})
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    with caplog.at_level(logging.ERROR, logger="channelworks.worker"):
        await wait_until(lambda: len(Recorder.seen) == 1)
    await finish(worker, run)
    [record] = [r for r in caplog.records if r.name == "channelworks.worker"]
    assert "'no.such.handler'" in record.getMessage()
    assert CHANNEL in record.getMessage()


async def test_a_message_in_hand_holds_back_the_next_one_in_the_layer(
    layer: InMemoryChannelLayer,
) -> None:
    # Another worker process reading the channel could take the second message meanwhile.
    worker = Worker(ChannelNameRouter({CHANNEL: Blocker.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    await layer.send(CHANNEL, {"type": "job.run", "n": 2})
    async with asyncio.timeout(TIMEOUT):
        await Blocker.started.wait()
    assert layer.receive_nowait(CHANNEL) == {"type": "job.run", "n": 2}
    Blocker.release.set()
    await finish(worker, run)
    assert Blocker.done == [1]


async def test_stop_finishes_the_message_in_hand_and_leaves_the_rest_in_the_layer(
    layer: InMemoryChannelLayer,
) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Blocker.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    await layer.send(CHANNEL, {"type": "job.run", "n": 2})
    async with asyncio.timeout(TIMEOUT):
        await Blocker.started.wait()
    worker.stop()
    await asyncio.sleep(0)  # let the worker act on the stop before the handler may finish
    assert not run.done()
    Blocker.release.set()
    async with asyncio.timeout(TIMEOUT):
        await run
    assert Blocker.done == [1]
    assert Blocker.cancelled == []
    assert layer.receive_nowait(CHANNEL) == {"type": "job.run", "n": 2}  # not taken, not lost


async def test_stop_while_idle_returns_and_loses_nothing(layer: InMemoryChannelLayer) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Recorder.as_asgi()}), layer, [CHANNEL, "other"])
    run = start(worker)
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    await wait_until(lambda: len(Recorder.seen) == 1)
    await finish(worker, run)
    await layer.send(CHANNEL, {"type": "job.run", "n": 2})
    assert layer.receive_nowait(CHANNEL) == {"type": "job.run", "n": 2}


async def test_a_second_stop_cancels_the_message_in_hand(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Blocker.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    async with asyncio.timeout(TIMEOUT):
        await Blocker.started.wait()
    worker.stop()
    with caplog.at_level(logging.WARNING, logger="channelworks.worker"):
        worker.stop()
    async with asyncio.timeout(TIMEOUT):
        await run  # returns, not raises
    assert Blocker.cancelled == [1]
    assert Blocker.done == []
    assert any("'job.run'" in r.getMessage() and CHANNEL in r.getMessage() for r in caplog.records)


async def test_an_application_that_returns_is_made_again_for_the_next_message(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[tuple[int, object]] = []
    calls = 0

    async def one_shot(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal calls
        calls += 1
        handled.append((calls, (await receive())["n"]))

    worker = Worker(one_shot, layer, [CHANNEL])
    run = start(worker)
    for n in range(3):
        await layer.send(CHANNEL, {"type": "job.run", "n": n})
    with caplog.at_level(logging.WARNING, logger="channelworks.worker"):
        await wait_until(lambda: len(handled) == 3)
        await finish(worker, run)
    assert handled == [(1, 0), (2, 1), (3, 2)]
    assert [r for r in caplog.records if r.name == "channelworks.worker"] == []


async def test_a_message_an_application_never_took_is_logged(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def ignorer(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["channel"])

    worker = Worker(ignorer, layer, [CHANNEL])
    run = start(worker)
    with caplog.at_level(logging.WARNING, logger="channelworks.worker"):
        await layer.send(CHANNEL, {"type": "job.run"})
        await wait_until(lambda: len(caplog.records) == 1)
    await finish(worker, run)
    assert calls == [CHANNEL]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "'job.run'" in record.getMessage()
    assert CHANNEL in record.getMessage()


async def test_sending_to_the_client_from_a_worker_is_an_error_naming_the_type(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    class Talker(AsyncConsumer):
        async def job_run(self, message: Message) -> None:
            await self.send({"type": "websocket.send", "text": "hi"})

    worker = Worker(ChannelNameRouter({CHANNEL: Talker.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    with caplog.at_level(logging.ERROR, logger="channelworks.worker"):
        await layer.send(CHANNEL, {"type": "job.run"})
        await wait_until(lambda: any(r.exc_info for r in caplog.records))
    await finish(worker, run)
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None
    assert "'websocket.send'" in str(record.exc_info[1])
    assert "channel layer" in str(record.exc_info[1])


class FlakyLayer(InMemoryChannelLayer):
    """Fails the first ``receive``, as a layer whose server went away would."""

    failures = 1

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("server went away")
        return await super().receive(channel)


async def test_a_failed_receive_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    layer = FlakyLayer()
    worker = Worker(
        ChannelNameRouter({CHANNEL: Recorder.as_asgi()}), layer, [CHANNEL], retry_delay=0
    )
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    with caplog.at_level(logging.ERROR, logger="channelworks.worker"):
        run = start(worker)
        await wait_until(lambda: len(Recorder.seen) == 1)
    await finish(worker, run)
    [record] = [r for r in caplog.records if r.name == "channelworks.worker"]
    assert CHANNEL in record.getMessage()
    assert isinstance(record.exc_info and record.exc_info[1], ConnectionError)


@pytest.mark.parametrize(
    ("channels", "error"),
    [
        (["bad name"], InvalidChannelName),
        (["specific.abc!def"], InvalidChannelName),  # process-local: not a worker's to read
        ([], ValueError),
    ],
)
def test_unusable_channel_names_are_refused(
    layer: InMemoryChannelLayer, channels: list[str], error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        Worker(Recorder.as_asgi(), layer, channels)
    if channels:
        assert repr(channels[0]) in str(caught.value)


def test_require_worker_channel_accepts_normal_names() -> None:
    assert require_worker_channel("thumbnail-generate.v2_x") == "thumbnail-generate.v2_x"


def test_duplicate_names_are_read_once(layer: InMemoryChannelLayer) -> None:
    assert Worker(Recorder.as_asgi(), layer, ["a", "b", "a"]).channels == ("a", "b")


def test_unrouted_channels() -> None:
    router = ChannelNameRouter({"a": Recorder.as_asgi()})
    assert unrouted_channels(router, ["a", "b"]) == ["b"]
    assert unrouted_channels(ProtocolTypeRouter({"channel": router}), ["a", "b"]) == ["b"]
    assert unrouted_channels(ProtocolTypeRouter({"http": router}), ["a"]) == ["a"]
    assert unrouted_channels(Recorder.as_asgi(), ["a"]) == []  # opaque: trusted


async def test_serve_stops_on_sigterm_after_the_messages_and_restores_the_handler(
    layer: InMemoryChannelLayer,
) -> None:
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM)
    worker = Worker(ChannelNameRouter({CHANNEL: Recorder.as_asgi()}), layer, [CHANNEL])
    ready: list[bool] = []
    for n in range(3):
        await layer.send(CHANNEL, {"type": "job.run", "n": n})
    task = asyncio.create_task(serve(worker, on_ready=lambda: ready.append(True)))
    await wait_until(lambda: len(Recorder.seen) == 3)
    assert ready == [True]
    # Raising SIGTERM without serve's handler would end the test run: check it is there.
    assert signal.getsignal(signal.SIGTERM) not in (before, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)
    async with asyncio.timeout(TIMEOUT):
        await task
    assert [n for _, _, n in Recorder.seen] == [0, 1, 2]
    assert signal.getsignal(signal.SIGTERM) == before


async def test_serve_outside_the_main_thread_installs_no_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    installed: list[object] = []

    async def check() -> None:
        layer = InMemoryChannelLayer()
        worker = Worker(Recorder.as_asgi(), layer, [CHANNEL])

        def on_ready() -> None:
            installed.append(signal.getsignal(signal.SIGTERM))
            worker.stop()

        await asyncio.wait_for(serve(worker, on_ready=on_ready), TIMEOUT)

    thread = threading.Thread(target=asyncio.run, args=(check(),))
    thread.start()
    await asyncio.to_thread(thread.join, TIMEOUT)
    assert installed == [before]


async def test_serve_stops_at_once_on_a_second_signal(layer: InMemoryChannelLayer) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Blocker.as_asgi()}), layer, [CHANNEL])
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    before = signal.getsignal(signal.SIGINT)
    task = asyncio.create_task(serve(worker))
    async with asyncio.timeout(TIMEOUT):
        await Blocker.started.wait()
    assert signal.getsignal(signal.SIGINT) not in (before, signal.default_int_handler)
    signal.raise_signal(signal.SIGINT)
    await wait_until(lambda: worker.stopping)
    signal.raise_signal(signal.SIGINT)
    async with asyncio.timeout(TIMEOUT):
        await task
    assert Blocker.cancelled == [1]
    assert signal.getsignal(signal.SIGINT) == before


async def test_a_worker_runs_once(layer: InMemoryChannelLayer) -> None:
    worker = Worker(Recorder.as_asgi(), layer, [CHANNEL])
    run = start(worker)
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already running"):
        await worker.run()
    await finish(worker, run)


async def test_cancelling_run_cancels_the_message_in_hand_and_propagates(
    layer: InMemoryChannelLayer,
) -> None:
    worker = Worker(ChannelNameRouter({CHANNEL: Blocker.as_asgi()}), layer, [CHANNEL])
    run = start(worker)
    await layer.send(CHANNEL, {"type": "job.run", "n": 1})
    async with asyncio.timeout(TIMEOUT):
        await Blocker.started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(TIMEOUT):
            await run
    assert Blocker.cancelled == [1]
