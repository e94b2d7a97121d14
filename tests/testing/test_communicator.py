"""ApplicationCommunicator and friends: timeouts stop the app as asgiref's do, errors surface."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from channelworks.layers import InMemoryChannelLayer, get_channel_layer
from channelworks.testing import ApplicationCommunicator, WebsocketCommunicator
from channelworks.testing.communicator import ApplicationStopped
from channelworks.types import Receive, Scope, Send

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "stop":
            return
        if message["type"] == "crash":
            raise LookupError("app crashed")
        await send({"type": "echo", "value": message.get("value"), "marker": marker.get()})


async def test_a_timeout_stops_the_application_as_asgiref_does() -> None:
    # Channels' own tests expect this: after the timeout, disconnect() raises CancelledError.
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    with pytest.raises(TimeoutError):
        await comm.receive_output(timeout=0.05)
    assert comm.future.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await comm.send_input({"type": "ping", "value": 1})


async def test_receive_nothing_leaves_the_application_running() -> None:
    async with ApplicationCommunicator(echo_app, {"type": "test"}) as comm:
        assert await comm.receive_nothing(timeout=0.05)
        assert not comm.future.done()
        await comm.send_input({"type": "ping", "value": 1})
        assert (await comm.receive_output())["value"] == 1


async def test_websocket_disconnect_after_a_timeout_raises_cancelled() -> None:
    comm = WebsocketCommunicator(echo_app, "/")
    with pytest.raises(TimeoutError):
        await comm.receive_from(timeout=0.05)
    with pytest.raises(asyncio.CancelledError):
        await comm.disconnect()


async def test_application_error_is_raised_by_receive_output() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    await comm.send_input({"type": "crash"})
    with pytest.raises(LookupError, match="app crashed"):
        await comm.receive_output()


async def test_ended_application_without_output_times_out_clearly() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    await comm.send_input({"type": "stop"})
    with pytest.raises(TimeoutError, match="ended"):
        await comm.receive_output(timeout=0.5)


async def test_output_sent_before_ending_is_still_received() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    await comm.send_input({"type": "ping", "value": 2})
    await comm.send_input({"type": "stop"})
    await comm.wait()
    assert (await comm.receive_output())["value"] == 2


async def test_receive_nothing() -> None:
    async with ApplicationCommunicator(echo_app, {"type": "test"}) as comm:
        assert await comm.receive_nothing(timeout=0.05)
        await comm.send_input({"type": "ping"})
        await asyncio.sleep(0.01)
        assert not await comm.receive_nothing(timeout=0.05)


async def test_application_runs_in_a_fresh_context() -> None:
    marker.set("from the test")
    async with ApplicationCommunicator(echo_app, {"type": "test"}) as comm:
        await comm.send_input({"type": "ping"})
        assert (await comm.receive_output())["marker"] == "unset"


async def test_wait_timeout_cancels_and_raises() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    with pytest.raises(TimeoutError):
        await comm.wait(timeout=0.05)
    assert comm.future.cancelled()


async def test_send_input_after_a_crash_raises_the_crash() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    await comm.send_input({"type": "crash"})
    await asyncio.sleep(0.01)
    with pytest.raises(LookupError):
        await comm.send_input({"type": "ping"})


async def test_websocket_communicator_scope() -> None:
    comm = WebsocketCommunicator(
        echo_app, "/a%20b/?x=1", headers=[(b"origin", b"http://h")], subprotocols=["p"]
    )
    assert comm.scope["path"] == "/a b/"
    assert comm.scope["query_string"] == b"x=1"
    assert comm.scope["headers"] == [(b"origin", b"http://h")]
    assert comm.scope["subprotocols"] == ["p"]
    await comm.stop()


async def test_send_to_needs_exactly_one_payload() -> None:
    comm = WebsocketCommunicator(echo_app, "/")
    with pytest.raises(ValueError, match="exactly one"):
        await comm.send_to()
    with pytest.raises(ValueError, match="exactly one"):
        await comm.send_to(text_data="a", bytes_data=b"b")
    await comm.stop()


def test_channel_layer_fixture_installs_a_fresh_layer(
    channel_layer: InMemoryChannelLayer,
) -> None:
    assert get_channel_layer() is channel_layer


async def test_a_stopped_application_is_reported_as_stopped() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    with pytest.raises(TimeoutError):
        await comm.wait(timeout=0.05)
    with pytest.raises(ApplicationStopped, match="stopped"):
        await comm.receive_output()
    with pytest.raises(ApplicationStopped, match="stopped"):
        await comm.send_input({"type": "ping"})
