"""Database hygiene around the sync pool's calls (consumers/sync_pool.py).

Each sync handler runs as if it were a request of its own: old connections are closed before
it and after it. A worker that runs many calls one after another closes once between two of
them (the close after one is the close before the next: nothing else runs in that thread in
between); these tests pin that every call still has a close on both sides.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from channelworks.consumers import SyncConsumer, sync_pool
from channelworks.testing import ApplicationCommunicator
from channelworks.types import Message

SCOPE = {"type": "test"}


class Recorder(SyncConsumer):
    """Logs each handler call, with its thread, in the shared ``log``."""

    log: list[tuple[str, int, str]] = []

    def note(self, event: Message) -> None:
        Recorder.log.append(("call", threading.get_ident(), event["text"]))
        self.send({"type": "out", "text": event["text"]})


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str]]:
    log: list[tuple[str, int, str]] = []
    Recorder.log = log

    def close_old_connections() -> None:
        log.append(("close", threading.get_ident(), ""))

    monkeypatch.setattr(sync_pool, "close_old_connections", close_old_connections)
    return log


async def test_every_call_has_a_close_before_and_after_it_in_its_thread(
    closes: list[tuple[str, int, str]],
) -> None:
    comms = [ApplicationCommunicator(Recorder.as_asgi(), SCOPE) for _ in range(10)]
    try:
        for number in range(5):  # ready together: run one after another in a worker
            for index, comm in enumerate(comms):
                await comm.send_input({"type": "note", "text": f"{index}-{number}"})
        for index, comm in enumerate(comms):
            got = [(await comm.receive_output(timeout=10))["text"] for _ in range(5)]
            assert got == [f"{index}-{number}" for number in range(5)]
    finally:
        for comm in comms:
            await comm.stop()
    assert sum(1 for entry in closes if entry[0] == "call") == 50
    by_thread: dict[int, list[str]] = {}
    for kind, thread, _ in closes:
        by_thread.setdefault(thread, []).append(kind)
    for kinds in by_thread.values():  # each call has a close right before and right after it
        for position, kind in enumerate(kinds):
            if kind == "call":
                assert 0 < position < len(kinds) - 1
                assert kinds[position - 1] == kinds[position + 1] == "close"
    # calls that follow each other in a worker share the close between them (one, not two)
    assert any("call,close,call" in ",".join(kinds) for kinds in by_thread.values())


async def test_a_call_after_the_worker_parked_gets_a_close_before_it(
    closes: list[tuple[str, int, str]],
) -> None:
    async with ApplicationCommunicator(Recorder.as_asgi(), SCOPE) as comm:
        for text in ("first", "second"):
            pool = sync_pool._the_pool()
            for _ in range(5000):  # until every worker is parked (state of other threads)
                if not pool.running:
                    break
                await asyncio.sleep(0.001)
            await comm.send_input({"type": "note", "text": text})
            assert (await comm.receive_output(timeout=5))["text"] == text
    kinds = [kind for kind, _, _ in closes]
    assert kinds == ["close", "call", "close"] * 2
