"""Channels' layer API under compat: the base class third-party layers subclass, the
``channel_layers`` manager, and the in-memory layer's expiry as Channels documents them."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest
from django.test import override_settings

from channelworks.exceptions import InvalidChannelLayerError
from channelworks.layers import InMemoryChannelLayer, channel_layers, get_channel_layer

MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


@pytest.fixture
def from_django_settings() -> Any:
    """The manager reads ``settings.CHANNEL_LAYERS``, as in a Channels project; what the
    suite had configured is put back after."""
    saved = channel_layers._config, channel_layers.backends
    channel_layers.configure(None)
    yield
    channel_layers._config, channel_layers.backends = saved


def layers() -> Any:
    return importlib.import_module("channels.layers")


def test_base_layer_is_a_concrete_class_with_channels_helpers() -> None:
    base_class = layers().BaseChannelLayer

    class ListLayer(base_class):  # type: ignore[misc, valid-type]
        """A third-party layer as Channels' docs describe one: validates with the base's
        helpers and keeps messages in a dict of lists."""

        extensions = ["flush"]

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.messages: dict[str, list[Any]] = {}

        async def send(self, channel: str, message: dict[str, Any]) -> None:
            assert self.require_valid_channel_name(channel)
            self.messages.setdefault(channel, []).append(message)

    layer = ListLayer(capacity=5, channel_capacity={"big.*": 50})
    asyncio.run(layer.send("a.b", {"type": "x"}))
    assert layer.messages == {"a.b": [{"type": "x"}]}
    assert layer.get_capacity("big.one") == 50
    assert layer.get_capacity("small") == 5
    assert layer.match_type_and_length("x" * 99)
    assert not layer.match_type_and_length("x" * 100)
    assert not layer.match_type_and_length(b"x")
    assert layer.valid_channel_names(["a", "b!c"])
    assert layer.non_local_name("specific.abc!def") == "specific.abc!"
    assert layer.non_local_name("plain") == "plain"
    with pytest.raises(TypeError, match=layer.invalid_name_error.format("Group")):
        layer.require_valid_group_name("bad!name")
    with pytest.raises(TypeError, match=layer.invalid_name_error.format("Channel")):
        asyncio.run(layer.send("x" * 100, {"type": "x"}))
    with pytest.warns(DeprecationWarning, match="valid_channel_name is deprecated"):
        assert layer.valid_channel_name("ok")
    with pytest.raises(NotImplementedError):  # not part of this layer
        asyncio.run(layer.group_add("g", "a"))
    asyncio.run(layer.close())  # the base has nothing to release


@pytest.mark.usefixtures("from_django_settings")
def test_make_test_backend_uses_test_config() -> None:
    with (
        override_settings(CHANNEL_LAYERS={"default": MEMORY}),
        pytest.raises(InvalidChannelLayerError, match="TEST_CONFIG"),
    ):
        channel_layers.make_test_backend("default")
    with override_settings(CHANNEL_LAYERS={"default": {**MEMORY, "TEST_CONFIG": {"expiry": 7}}}):
        assert channel_layers.make_test_backend("default").expiry == 7
    with (
        override_settings(CHANNEL_LAYERS={"default": {**MEMORY, "ROUTING": "x.routing"}}),
        pytest.raises(InvalidChannelLayerError, match="ROUTING"),
    ):
        channel_layers.make_backend("default")


@pytest.mark.usefixtures("from_django_settings")
def test_override_settings_gives_a_fresh_layer() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {**MEMORY, "CONFIG": {"capacity": 3}}}):
        first = get_channel_layer()
        assert first is not None
        assert first.capacity == 3
    assert channel_layers.backends == {}
    with override_settings(CHANNEL_LAYERS={"default": {**MEMORY, "CONFIG": {"capacity": 4}}}):
        second = get_channel_layer()
        assert second is not None
        assert second is not first
        assert second.capacity == 4
    assert channel_layers.backends == {}


async def test_an_unread_expired_message_stays_listed_until_a_receive_cleans_up() -> None:
    # Channels cleans expired messages on receive and group_send, not on send; its tests
    # count the channels in between.
    now = [0.0]
    layer = InMemoryChannelLayer(expiry=1, clock=lambda: now[0])
    await layer.send("stale", {"type": "m.1"})
    now[0] = 1.5  # expired
    await layer.send("fresh", {"type": "m.2"})
    assert set(layer.channels) == {"stale", "fresh"}
    assert (await layer.receive("fresh"))["type"] == "m.2"
    assert layer.channels == {}
    assert layer.stats.expired == 1


async def test_sends_alone_still_sweep_once_a_sweep_is_overdue() -> None:
    now = [0.0]
    layer = InMemoryChannelLayer(expiry=1, clock=lambda: now[0])
    await layer.send("stale", {"type": "m.1"})
    now[0] = 2.5  # two sweep intervals passed with no receive or group send
    await layer.send("fresh", {"type": "m.2"})
    assert set(layer.channels) == {"fresh"}
    assert layer.stats.expired == 1


async def test_memory_layer_channels_and_expiry_as_channels_shows_them() -> None:
    now = [0.0]
    layer = InMemoryChannelLayer(expiry=10, clock=lambda: now[0])
    await layer.send("one", {"type": "m.1"})
    await layer.send("one", {"type": "m.2"})
    await layer.send("two", {"type": "m.3"})
    assert {name: len(queue) for name, queue in layer.channels.items()} == {"one": 2, "two": 1}
    assert (await layer.receive("two"))["type"] == "m.3"
    assert set(layer.channels) == {"one"}  # an emptied channel is not listed
    now[0] = 11
    layer._clean_expired()
    assert layer.channels == {}
    assert layer.stats.expired == 2
    await layer.group_add("g1", "one")
    await layer.group_add("g2", "one")
    await layer.group_add("g2", "two")
    layer._remove_from_groups("one")
    assert sorted(layer.group_names()) == ["g2"]
