"""Database access from consumers: database_sync_to_async and sync handlers, on SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from channelworks.consumers import AsyncConsumer, SyncConsumer
from channelworks.db import aclose_old_connections, database_sync_to_async
from channelworks.testing import ApplicationCommunicator
from channelworks.types import Message
from tests.djangoapp.models import Note
from tests.layers.backends import require_service

ALIASES = ["default", "postgres"]


@pytest.fixture(params=ALIASES)
def alias(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_service("PostgreSQL", getattr(settings, "POSTGRES_AVAILABLE", False))
    return str(request.param)


pytestmark = pytest.mark.django_db(transaction=True, databases=ALIASES)


async def test_database_sync_to_async_runs_orm_calls(alias: str) -> None:
    @database_sync_to_async
    def create_and_count(text: str) -> int:
        Note.objects.using(alias).create(text=text)
        return Note.objects.using(alias).count()

    assert await create_and_count("one") == 1
    assert await create_and_count("two") == 2


async def test_obsolete_connections_are_closed_around_the_call() -> None:
    require_service("PostgreSQL", getattr(settings, "POSTGRES_AVAILABLE", False))

    @database_sync_to_async
    def use_then_expire() -> None:
        Note.objects.using("postgres").count()
        connections["postgres"].close_at = time.monotonic() - 1  # as if CONN_MAX_AGE passed

    @database_sync_to_async
    def still_open() -> bool:
        return connections["postgres"].connection is not None

    await use_then_expire()
    assert not await still_open()  # closed after the first call, not reused stale


async def test_decorator_with_arguments() -> None:
    @database_sync_to_async(thread_sensitive=False)
    def double(value: int) -> int:
        return value * 2

    assert await double(21) == 42
    await aclose_old_connections()


class Recorder(SyncConsumer):
    """A sync consumer that uses the ORM directly in its handlers."""

    alias = "default"

    def note_add(self, message: Message) -> None:
        Note.objects.using(self.alias).create(text=message["text"])
        count = Note.objects.using(self.alias).count()
        self.send({"type": "note.count", "count": count})


async def test_sync_consumer_uses_the_orm_directly(alias: str) -> None:
    async with ApplicationCommunicator(Recorder.as_asgi(alias=alias), {"type": "test"}) as comm:
        for n in range(1, 4):
            await comm.send_input({"type": "note.add", "text": f"n{n}"})
            assert await comm.receive_output() == {"type": "note.count", "count": n}


async def test_async_consumer_with_database_sync_to_async_handler(alias: str) -> None:
    class Saver(AsyncConsumer):
        @database_sync_to_async
        def save(self, text: str) -> int:
            return Note.objects.using(alias).create(text=text).pk

        async def note_add(self, message: Message) -> None:
            pk = await self.save(message["text"])
            await self.send({"type": "saved", "pk": pk})

    async with ApplicationCommunicator(Saver.as_asgi(), {"type": "test"}) as comm:
        await comm.send_input({"type": "note.add", "text": "x"})
        saved: Any = await comm.receive_output()
    assert (
        await database_sync_to_async(lambda: Note.objects.using(alias).get(pk=saved["pk"]).text)()
        == "x"
    )
