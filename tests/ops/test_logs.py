"""Connection open/close lines, and the connection id on every record of a connection."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.urls import path

from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.ops import ConnectionIdFilter
from channelworks.ops.connections import Connection
from channelworks.routing import URLRouter
from channelworks.testing import WebsocketCommunicator

app_logger = logging.getLogger("tests.ops.app")


class Failing(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        app_logger.info("got %s", text_data)
        if text_data == "fail":
            raise ValueError("broken handler")
        await self.send(text_data=text_data)


class SyncLogging(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        app_logger.info("sync got %s", text_data)  # in a worker thread
        self.send(text_data=text_data)


app = URLRouter(
    [
        path("failing/", Failing.as_asgi(), name="failing"),
        path("sync/", SyncLogging.as_asgi(), name="sync"),
    ]
)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` at INFO, its handler given the connection id filter."""
    caplog.set_level(logging.INFO)
    id_filter = ConnectionIdFilter()
    caplog.handler.addFilter(id_filter)
    yield caplog
    caplog.handler.removeFilter(id_filter)


def lines(records: list[logging.LogRecord], event: str) -> list[logging.LogRecord]:
    return [
        r for r in records if r.name == "channelworks.connections" and r.__dict__["event"] == event
    ]


#: the connection age the close line is given, and what the line says of it
AGE, AGE_IN_THE_LINE = 2.3456, 2.346


async def test_open_and_close_lines(
    log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a set connection age, not a measured one: the line's rounding (to the millisecond) and
    # format are checked
    monkeypatch.setattr(Connection, "duration", property(lambda self: AGE))
    records = log.records
    ws = WebsocketCommunicator(app, "/failing/")
    await ws.connect()
    await ws.send_to(text_data="one")
    assert await ws.receive_from() == "one"
    await ws.disconnect(1001)
    [opened] = lines(records, "open")
    [closed] = lines(records, "close")
    connection_id = opened.__dict__["connection_id"]
    assert closed.__dict__["connection_id"] == connection_id != "-"
    assert opened.getMessage().startswith(f"event=open connection_id={connection_id} ")
    assert "route=failing" in opened.getMessage()
    assert closed.__dict__["route"] == "failing"
    assert closed.__dict__["close_code"] == 1001
    assert closed.__dict__["frames_in"] == closed.__dict__["frames_out"] == 1
    assert closed.__dict__["user_id"] is None
    assert closed.__dict__["duration"] == AGE_IN_THE_LINE
    assert f" duration={AGE_IN_THE_LINE} " in closed.getMessage()
    for field in ("close_code=1001", "frames_in=1", "frames_out=1", "user_id=-"):
        assert field in closed.getMessage(), field


async def test_connection_id_on_handler_error_records(log: pytest.LogCaptureFixture) -> None:
    records = log.records
    first = WebsocketCommunicator(app, "/failing/")
    await first.connect()
    await first.send_to(text_data="ok")
    await first.receive_from()
    second = WebsocketCommunicator(app, "/failing/")
    await second.connect()
    await second.send_to(text_data="fail")
    assert (await second.receive_output())["code"] == 1011
    with pytest.raises(ValueError, match="broken handler"):
        await second.wait()
    await first.disconnect()
    opened = {r.__dict__["connection_id"] for r in lines(records, "open")}
    assert len(opened) == 2
    [error] = [r for r in records if r.name == "channelworks.consumers" and r.levelname == "ERROR"]
    [failing_got] = [r for r in records if r.getMessage() == "got fail"]
    [ok_got] = [r for r in records if r.getMessage() == "got ok"]
    assert error.connection_id == failing_got.connection_id  # type: ignore[attr-defined]
    assert ok_got.connection_id != failing_got.connection_id  # type: ignore[attr-defined]
    assert {ok_got.connection_id, failing_got.connection_id} == opened  # type: ignore[attr-defined]
    [closed] = [r for r in lines(records, "close") if r.connection_id == error.connection_id]  # type: ignore[attr-defined]
    assert closed.__dict__["close_code"] == 1011


async def test_connection_id_in_sync_handler_threads(log: pytest.LogCaptureFixture) -> None:
    records = log.records
    ws = WebsocketCommunicator(app, "/sync/")
    await ws.connect()
    await ws.send_to(text_data="threaded")
    assert await ws.receive_from() == "threaded"
    await ws.disconnect()
    [opened] = lines(records, "open")
    [got] = [r for r in records if r.getMessage() == "sync got threaded"]
    assert str(got.threadName).startswith("channelworks-sync")
    assert got.connection_id == opened.connection_id  # type: ignore[attr-defined]


async def test_the_logger_can_be_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.WARNING, logger="channelworks.connections")
    ws = WebsocketCommunicator(app, "/failing/")
    await ws.connect()
    await ws.disconnect()
    assert not [r for r in caplog.records if r.name == "channelworks.connections"]


def test_outside_a_connection_the_id_is_a_dash() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert ConnectionIdFilter().filter(record)
    assert record.connection_id == "-"  # type: ignore[attr-defined]
