"""Repeated log lines are aggregated per key and interval; counters stay exact."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channelworks import logs
from channelworks.layers import InMemoryChannelLayer
from channelworks.logs import AggregatedLog

log = logging.getLogger("tests.logs")
TEMPLATE = "{count} thing(s) in {where}"


class Lines:
    """The lines written to ``tests.logs`` so far."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __call__(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.name == "tests.logs"]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.INFO, logger="tests.logs")
    return Lines(caplog)


def test_first_line_at_once_then_one_line_per_interval_with_the_sums(lines: Lines) -> None:
    now = [0.0]
    aggregated = AggregatedLog(interval=10, clock=lambda: now[0])
    aggregated.event(log, "k", logging.WARNING, TEMPLATE, 2, where="a")
    assert lines() == ["2 thing(s) in a"]
    for t in (1, 2, 3):
        now[0] = t
        aggregated.event(log, "k", logging.WARNING, TEMPLATE, 3, where=f"b{t}")
    assert len(lines()) == 1  # held back: no loop runs, so no timer either
    now[0] = 10.5
    aggregated.event(log, "k", logging.WARNING, TEMPLATE, 1, where="c")
    assert len(lines()) == 2
    # 3+3+3+1, with the latest event's fields
    assert lines()[1].startswith("10 thing(s) in c [4 times in 10 s")
    now[0] = 30  # an interval with nothing: the next one is a first line again
    aggregated.event(log, "k", logging.WARNING, TEMPLATE, 1, where="d")
    assert lines()[2] == "1 thing(s) in d"


def test_keys_are_apart_and_flush_writes_what_is_pending(lines: Lines) -> None:
    now = [0.0]
    aggregated = AggregatedLog(interval=10, clock=lambda: now[0])
    for key in ("a", "b", "a", "a", "b"):
        aggregated.event(log, key, logging.WARNING, TEMPLATE, 1, where=key)
    assert lines() == ["1 thing(s) in a", "1 thing(s) in b"]
    aggregated.flush()
    assert sorted(lines()[2:]) == [
        "1 thing(s) in b [1 times in 0 s, aggregated: at most one line per 10 s]",
        "2 thing(s) in a [2 times in 0 s, aggregated: at most one line per 10 s]",
    ]
    aggregated.flush()
    assert len(lines()) == 4  # nothing pending any more


async def test_on_a_loop_the_held_lines_come_when_the_interval_ends(lines: Lines) -> None:
    aggregated = AggregatedLog(interval=0.05)
    for _ in range(5):
        aggregated.event(log, "k", logging.WARNING, TEMPLATE, 1, where="x")
    assert len(lines()) == 1
    for _ in range(100):  # the timer fires once the interval is over
        await asyncio.sleep(0.01)
        if len(lines()) == 2:
            break
    assert lines()[1].startswith("4 thing(s) in x [4 times in")


def test_keys_are_bounded(lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_KEYS", 4)
    aggregated = AggregatedLog(interval=10, clock=lambda: 0.0)
    for n in range(20):
        aggregated.event(log, n, logging.WARNING, TEMPLATE, 1, where=n)
        aggregated.event(log, n, logging.WARNING, TEMPLATE, 1, where=n)  # pending
    assert len(aggregated._keys) <= 4
    # keys forgotten with events pending were reported first: only the last few still hold one
    assert sum("[1 times" in line for line in lines()) >= 20 - 4


async def test_a_flooded_member_makes_one_line_not_one_per_group_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = InMemoryChannelLayer(capacity=1)
    full, fine = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", full)
    await layer.group_add("room", fine)
    await layer.send(full, {"type": "filler"})
    with caplog.at_level(logging.WARNING, logger="channelworks.layers"):
        for n in range(1000):
            await layer.group_send("room", {"type": "chat.message", "n": n})
            assert (await layer.receive(fine))["n"] == n
        assert layer.stats.group_full == 1000  # exact
        assert len(caplog.records) == 1
        await layer.close()  # what was held back is written as the layer closes
    assert len(caplog.records) == 2
    assert "skipped 999 full channel(s)" in caplog.records[1].getMessage()
