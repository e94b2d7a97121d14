"""Topic patterns and the layer groups that carry topics."""

from __future__ import annotations

import pytest

from channelworks.layers.names import require_group_name
from channelworks.topics.names import TopicPattern, decode, encode, group_for, topic_of


@pytest.mark.parametrize(
    "topic", ["room:lobby", "a", "user:42:inbox", "x.y_z-w", "café:☕", "$weird {name}"]
)
def test_a_short_topic_maps_to_a_valid_reversible_group(topic: str) -> None:
    group = group_for(topic)
    assert require_group_name(group) == group
    assert topic_of(group) == topic
    assert decode(encode(topic)) == topic


def test_distinct_topics_never_share_a_group() -> None:
    names = ["room:a_b", "room:a.b", "room:a:b", "room_3aa", "room:A", "room:a-b"]
    assert len({group_for(n) for n in names}) == len(names)


def test_a_long_topic_maps_to_a_hashed_group_its_pattern_still_matches() -> None:
    topic = "room:" + "é" * 150
    group = group_for(topic)
    assert require_group_name(group) == group
    assert topic_of(group) is None
    assert group != group_for("room:" + "é" * 149 + "e")
    assert TopicPattern("room:{slug}").group_regex.match(group)
    assert not TopicPattern("user:{id}").group_regex.match(group)


def test_a_pattern_gives_its_params_and_a_param_never_spans_a_colon() -> None:
    pattern = TopicPattern("room:{slug}:{part}")
    assert pattern.match("room:lobby:chat") == {"slug": "lobby", "part": "chat"}
    assert pattern.match("room:lobby") is None
    assert pattern.match("room:a:b:c") is None
    assert TopicPattern("lobby").match("lobby") == {}
    assert TopicPattern("room:{slug}").match("room:") is None


def test_the_group_regex_matches_exactly_the_groups_of_the_pattern() -> None:
    regex = TopicPattern("room:{slug}").group_regex
    assert regex.match(group_for("room:lobby"))
    assert regex.match(group_for("room:café"))
    assert not regex.match(group_for("room:a:b"))
    assert not regex.match(group_for("rooms:a"))
    assert not regex.match(group_for("room:lobby") + "x.y")


@pytest.mark.parametrize("bad", ["", "room:{slug}:{slug}", "room:{1x}", "room:{"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="topic pattern"):
        TopicPattern(bad)
