"""Channels' test tools as its testing documentation describes them, imported as a project does.

Written from Channels' "Testing" documentation: ``WebsocketCommunicator.receive_from`` fails
with an ``AssertionError`` naming the message type it got instead of a frame, and
``receive_json_from`` with one when the frame is binary; a path must be a ``str``; an
application's ORM calls made through ``database_sync_to_async`` while a Django ``TestCase``
drives it do not close the test's connection. And a ``receive_from`` cancelled from outside (the
common "assert nothing comes" pattern, ``asyncio.wait_for(communicator.receive_from(), t)``)
must not lose the message the application sends next.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any

import pytest
from django.db import connections
from django.test import TestCase


@pytest.fixture
def testing() -> ModuleType:
    """``channels.testing``, imported once the package's fixture installed the alias."""
    return importlib.import_module("channels.testing")


def consumer_class(name: str) -> Any:
    return getattr(importlib.import_module("channels.generic.websocket"), name)


def closing_after_accept() -> Any:
    class AcceptThenClose(consumer_class("AsyncWebsocketConsumer")):  # type: ignore[misc]
        async def connect(self) -> None:
            await self.accept()
            await self.close()

    return AcceptThenClose


def binary_echo() -> Any:
    class BinaryEcho(consumer_class("AsyncWebsocketConsumer")):  # type: ignore[misc]
        async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
            await self.send(bytes_data=b"\x00binary")

    return BinaryEcho


async def test_receive_from_a_close_names_the_type(testing: ModuleType) -> None:
    communicator = testing.WebsocketCommunicator(closing_after_accept().as_asgi(), "/")
    await communicator.connect()
    with pytest.raises(AssertionError) as info:
        await communicator.receive_from()
    assert str(info.value) == "Expected type 'websocket.send', but was 'websocket.close'"


async def test_receive_json_from_a_binary_frame(testing: ModuleType) -> None:
    communicator = testing.WebsocketCommunicator(binary_echo().as_asgi(), "/")
    await communicator.connect()
    await communicator.send_to(text_data="go")
    with pytest.raises(
        AssertionError, match="JSON data is not a text frame, it is <class 'bytes'>"
    ):
        await communicator.receive_json_from()
    await communicator.disconnect()


def test_the_path_must_be_a_string(testing: ModuleType) -> None:
    with pytest.raises(TypeError, match="Expected str, got <class 'bytes'>"):
        testing.WebsocketCommunicator(binary_echo().as_asgi(), b"/")


async def test_a_cancelled_receive_loses_nothing(testing: ModuleType) -> None:
    class Later(consumer_class("AsyncWebsocketConsumer")):  # type: ignore[misc]
        async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
            await self.send(text_data=f"got {text_data}")

    communicator = testing.WebsocketCommunicator(Later.as_asgi(), "/")
    await communicator.connect()
    for turns in range(8):  # the cancellation lands at a different step each time
        waiting = asyncio.ensure_future(communicator.receive_from())
        await asyncio.sleep(0)
        await communicator.send_to(text_data=str(turns))
        for _ in range(turns):
            await asyncio.sleep(0)
        waiting.cancel()  # what asyncio.wait_for does when its timeout expires
        try:
            got = await waiting
        except asyncio.CancelledError:
            got = await communicator.receive_from()
        assert got == f"got {turns}"
    with pytest.raises(TimeoutError):  # and the usual "nothing comes" pattern still works
        await asyncio.wait_for(communicator.receive_from(), 0.05)
    await communicator.disconnect()


def one_query() -> Any:
    db = importlib.import_module("channels.db")

    @db.database_sync_to_async  # type: ignore[untyped-decorator]
    def select() -> int:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1234")
            value: int = cursor.fetchone()[0]
            return value

    class Queries(consumer_class("AsyncWebsocketConsumer")):  # type: ignore[misc]
        async def connect(self) -> None:
            assert await select() == 1234
            await self.accept("fun")

    return Queries


class ORMCallsKeepTheTestsTransaction(TestCase):
    """A ``TestCase`` runs its async tests in a thread that holds its transaction, and the
    application's ``database_sync_to_async`` calls run in that same thread."""

    async def test_websocket(self) -> None:
        testing = importlib.import_module("channels.testing")
        for _ in range(2):  # the second connection finds the connection still usable
            communicator = testing.WebsocketCommunicator(one_query().as_asgi(), "/")
            assert await communicator.connect() == (True, "fun")
            await communicator.disconnect()
        assert not connections["default"].closed_in_transaction
