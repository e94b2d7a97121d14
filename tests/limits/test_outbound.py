"""The slow-client bound's bookkeeping, counters and aggregated log lines, with plain times."""

from __future__ import annotations

import asyncio

import pytest

from channelworks.limits import stats
from channelworks.limits.outbound import SEND_CODES, SendWatch, cancel_sends, watchdog


def test_a_watch_with_no_send_waiting_is_never_stuck() -> None:
    watch = SendWatch(timeout=1.0, max_pending=None)
    assert not any(watch.stuck(t) for t in (0.0, 5.0, 10.0))


def test_a_send_waiting_past_the_timeout_is_stuck() -> None:
    watch = SendWatch(timeout=1.0, max_pending=None)
    watch.started = 1
    assert not watch.stuck(0.0)  # first seen waiting
    assert not watch.stuck(0.9)
    assert watch.stuck(1.0)


def test_sends_that_keep_finishing_are_not_stuck() -> None:
    watch = SendWatch(timeout=1.0, max_pending=None)
    watch.started = 1
    for second in range(10):
        watch.started += 1  # one finished since the last look; another waits
        watch.finished += 1
        assert not watch.stuck(float(second))
    assert not watch.stuck(9.5)
    assert watch.stuck(10.0)  # a second after the last look that saw one finish


def test_too_many_pending_sends() -> None:
    watch = SendWatch(timeout=None, max_pending=2)
    watch.started = 1
    assert not watch.too_many()
    watch.started = 2
    assert watch.too_many()
    assert not SendWatch(timeout=None, max_pending=None).too_many()


def test_tripping_counts_and_logs_once() -> None:
    stats.reset()
    watch = SendWatch(timeout=1.0, max_pending=None)
    assert watch.trip("test")
    assert not watch.trip("test")
    assert watch.tripped
    assert stats.slow_closed == 1


class Sender:
    """Stands for a consumer: its ``_send`` waits like a send to a client that does not read."""

    async def _send(self) -> None:
        await asyncio.sleep(10)

    async def handler(self) -> None:
        await self._send()


async def test_cancel_sends_cancels_only_the_tasks_waiting_in_that_consumers_sends() -> None:
    SEND_CODES.add(Sender._send.__code__)
    try:
        slow, other = Sender(), Sender()
        in_send = asyncio.create_task(slow.handler())
        elsewhere = asyncio.create_task(asyncio.sleep(10))
        others_send = asyncio.create_task(other.handler())
        await asyncio.sleep(0)  # every task is waiting now
        assert cancel_sends([SendWatch(1.0, None, owner=slow)]) == 1
        with pytest.raises(asyncio.CancelledError):
            await in_send
        assert not elsewhere.done()
        assert not others_send.done()
        elsewhere.cancel()
        others_send.cancel()
    finally:
        SEND_CODES.discard(Sender._send.__code__)


async def test_the_watchdog_sweeps_only_while_it_has_watches() -> None:
    dog = watchdog()
    watch = SendWatch(timeout=0.2, max_pending=None)
    dog.add(watch)
    assert dog.tick == pytest.approx(0.05)
    assert dog._timer is not None
    dog.discard(watch)
    assert dog._timer is None  # nothing left to look at: no timer holds the loop
    assert dog.tick == 1.0
