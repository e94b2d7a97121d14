"""Backend-independent history logic (channelworks.layers.history), with plain data; and the
in-memory log's TTL with an injected clock."""

from __future__ import annotations

import re

import pytest

from channelworks.exceptions import Unrecoverable
from channelworks.layers import InMemoryChannelLayer
from channelworks.layers.history import (
    POSITION_KEY,
    HistoryConfig,
    HistoryOptions,
    ResumeFilter,
    StreamPosition,
    select,
)

ENTRIES = [(n, {"type": "t", "n": n}) for n in range(4, 9)]  # the log holds offsets 4..8


def test_select_returns_the_messages_after_since_with_positions() -> None:
    result = select(
        "g", ENTRIES, epoch="e", top=8, oldest=4, since=StreamPosition(5, "e"), limit=10
    )
    assert [m["n"] for m in result.messages] == [6, 7, 8]
    assert [m[POSITION_KEY] for m in result.messages] == [[6, "e"], [7, "e"], [8, "e"]]
    assert result.position == StreamPosition(8, "e")
    assert POSITION_KEY not in ENTRIES[0][1]  # the stored message is not changed


def test_select_from_just_before_the_oldest_is_complete() -> None:
    result = select(
        "g", ENTRIES, epoch="e", top=8, oldest=4, since=StreamPosition(3, "e"), limit=10
    )
    assert len(result.messages) == 5


@pytest.mark.parametrize(
    ("since", "limit", "reason"),
    [
        (StreamPosition(5, "old"), 10, "another epoch"),
        (StreamPosition(2, "e"), 10, "left the log"),
        (StreamPosition(9, "e"), 10, "ahead"),
        (StreamPosition(4, "e"), 3, "over 3"),
    ],
)
def test_select_refuses_what_it_cannot_return_whole(
    since: StreamPosition, limit: int, reason: str
) -> None:
    with pytest.raises(Unrecoverable, match=reason) as info:
        select("g", ENTRIES, epoch="e", top=8, oldest=4, since=since, limit=limit)
    assert info.value.since == since
    assert info.value.position == StreamPosition(8, "e")


def test_select_refuses_a_log_with_a_hole() -> None:
    holed = [e for e in ENTRIES if e[0] != 6]
    with pytest.raises(Unrecoverable, match="gap"):
        select("g", holed, epoch="e", top=8, oldest=4, since=StreamPosition(4, "e"), limit=10)


def test_select_of_an_emptied_log_with_messages_missed_is_unrecoverable() -> None:
    with pytest.raises(Unrecoverable):
        select("g", [], epoch="e", top=8, oldest=None, since=StreamPosition(7, "e"), limit=10)
    assert (
        select(
            "g", [], epoch="e", top=8, oldest=None, since=StreamPosition(8, "e"), limit=10
        ).messages
        == []
    )


def test_select_without_since_is_the_last_limit() -> None:
    result = select("g", ENTRIES, epoch="e", top=8, oldest=4, since=None, limit=2)
    assert [m["n"] for m in result.messages] == [7, 8]
    assert select("g", ENTRIES, epoch="e", top=8, oldest=4, since=None, limit=0).messages == []


@pytest.mark.parametrize(
    "value", [[3, "e"], (3, "e"), {"offset": 3, "epoch": "e"}, StreamPosition(3, "e")]
)
def test_position_parses_what_a_client_sends_back(value: object) -> None:
    assert StreamPosition.parse(value) == StreamPosition(3, "e")


@pytest.mark.parametrize("value", [None, [3], ["3", "e"], [-1, "e"], [3, ""], [True, "e"], "3:e"])
def test_position_refuses_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match="not a stream position"):
        StreamPosition.parse(value)


def test_position_of_a_message() -> None:
    assert StreamPosition.of({"type": "t", POSITION_KEY: [2, "e"]}) == StreamPosition(2, "e")
    assert StreamPosition.of({"type": "t"}) is None


def test_config_patterns_first_match_wins_and_explicit_flags() -> None:
    setting: dict[str | re.Pattern[str], dict[str, int]] = {
        "chat.vip*": {"size": 5},
        "chat.*": {"size": 500, "ttl": 3600},
        re.compile(r"blog\d+"): {},
    }
    config = HistoryConfig(setting)
    assert config.for_send("chat.vip1", None) == HistoryOptions(size=5)
    assert config.for_send("chat.room", None) == HistoryOptions(500, 3600)
    assert config.for_send("blog7", None) == HistoryOptions()
    assert config.for_send("other", None) is None
    assert config.for_send("other", True) == HistoryOptions()
    assert config.for_send("chat.room", False) is None
    assert HistoryConfig().for_send("any", None) is None
    assert HistoryConfig().for_read("any") == HistoryOptions()


@pytest.mark.parametrize(
    "setting",
    [{"x": {"size": 0}}, {"x": {"ttl": -1}}, {"x": {"sizes": 3}}, {"x": 5}, {"x": {"size": 1.5}}],
)
def test_config_refuses_bad_options(setting: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="history"):
        HistoryConfig(setting)  # type: ignore[arg-type]


def test_resume_filter_drops_by_offset_what_the_resume_delivered() -> None:
    resume = ResumeFilter()
    assert resume.fresh({"type": "t", POSITION_KEY: [1, "e"]})  # nothing resumed yet
    resume.resumed(StreamPosition(5, "e"))
    assert not resume.fresh({"type": "t", POSITION_KEY: [4, "e"]})
    assert not resume.fresh({"type": "t", POSITION_KEY: [5, "e"]})
    assert resume.fresh({"type": "t", POSITION_KEY: [6, "e"]})
    assert resume.fresh({"type": "t", POSITION_KEY: [1, "other-log"]})
    assert resume.fresh({"type": "t"})
    resume.resumed(StreamPosition(3, "e"))  # an older mark never lowers the newer one
    assert not resume.fresh({"type": "t", POSITION_KEY: [4, "e"]})


async def test_memory_log_expires_after_its_ttl_and_comes_back_with_another_epoch() -> None:
    now = [1000.0]
    layer = InMemoryChannelLayer(clock=lambda: now[0], history={"g*": {"size": 10, "ttl": 30}})
    first = await layer.group_send("g1", {"type": "t"})
    assert first is not None
    now[0] += 20
    assert (await layer.history("g1", since=StreamPosition(0, first.epoch))).position == first
    await layer.group_send("g1", {"type": "t"})  # a send renews the TTL
    now[0] += 20
    assert (await layer.history("g1", since=first)).position.offset == 2
    now[0] += 31
    with pytest.raises(Unrecoverable):
        await layer.history("g1", since=first)
    layer.sweep()
    assert layer._logs.keys() == {"g1"}  # the read made a fresh, empty log
    now[0] += 31
    layer.sweep()
    assert not layer._logs
