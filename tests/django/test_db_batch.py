"""``channelworks.db_batch.Batched``: calls that arrive while one waits for the database
thread share its hop, and still each get their own result, error and cancellation."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from channelworks.db_batch import Batched


class Recorder:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def call(self, number: int) -> int:
        if number == 0:  # the first call holds the thread until the others are queued
            self.gate.wait(5)
        if number == 3:
            raise ValueError("three is refused")
        return number * 10


async def test_calls_queued_behind_one_share_the_next_hop_with_their_own_outcomes() -> None:
    recorder = Recorder()
    threads: list[str] = []

    def call(number: int) -> int:
        threads.append(threading.current_thread().name)
        return recorder.call(number)

    batched = Batched(call)
    hops: list[int] = []  # calls per hop
    run = batched._run

    def counted(batch: Any) -> None:
        hops.append(len(batch.calls))
        run(batch)

    batched._run = counted  # type: ignore[method-assign]
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0.05)  # the first hop has started and holds the thread
    others = [asyncio.ensure_future(batched(number)) for number in (1, 2, 3, 4)]
    await asyncio.sleep(0.05)
    recorder.gate.set()
    assert await first == 0
    assert [await call for call in others[:2]] == [10, 20]
    with pytest.raises(ValueError, match="three is refused"):
        await others[2]
    assert await others[3] == 40  # the error of one call stays with its caller
    assert hops == [1, 4]  # the four queued behind the first went in one hop
    assert len(threads) == 5
    assert len(set(threads)) == 1  # Django's database thread


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    recorder = Recorder()
    batched = Batched(recorder.call)
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(batched(1))
    third = asyncio.ensure_future(batched(2))
    await asyncio.sleep(0.01)
    second.cancel()
    recorder.gate.set()
    assert await first == 0
    assert await third == 20
    with pytest.raises(asyncio.CancelledError):
        await second
