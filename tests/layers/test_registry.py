"""The CHANNEL_LAYERS registry: configuration sources, aliases and clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from channelworks.exceptions import InvalidChannelLayerError
from channelworks.layers import InMemoryChannelLayer, channel_layers, get_channel_layer


def test_no_configuration_means_no_layer() -> None:
    assert get_channel_layer() is None
    assert get_channel_layer("other") is None


def test_configured_layer_is_built_once_with_its_config() -> None:
    channel_layers.configure(
        {
            "default": {
                "BACKEND": "channelworks.layers.InMemoryChannelLayer",
                "CONFIG": {"capacity": 7, "expiry": 5},
            }
        }
    )
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    assert (layer.capacity, layer.expiry) == (7, 5)
    assert get_channel_layer() is layer
    assert get_channel_layer("missing") is None


def test_channels_backend_path_is_accepted() -> None:
    channel_layers.configure({"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
    assert isinstance(get_channel_layer(), InMemoryChannelLayer)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "no BACKEND"),
        ({"BACKEND": "no.such.Module"}, "Cannot import BACKEND 'no.such.Module'"),
        ({"BACKEND": "channelworks.layers.Nope"}, "Cannot import"),
        ({"BACKEND": "channelworks.layers.channel_layers"}, "not a class"),
        (
            {"BACKEND": "channelworks.layers.InMemoryChannelLayer", "CONFIG": {"hosts": []}},
            "Bad CONFIG for channel layer 'default'",
        ),
        ({"BACKEND": "channelworks.layers.InMemoryChannelLayer", "CONFIG": [1]}, "must be a dict"),
        (
            {"BACKEND": "channelworks.layers.InMemoryChannelLayer", "CONFIG": {"expiry": 0}},
            "Bad CONFIG for channel layer 'default'.*expiry",
        ),
    ],
)
def test_bad_configuration_is_reported(entry: dict[str, object], message: str) -> None:
    channel_layers.configure({"default": entry})
    with pytest.raises(InvalidChannelLayerError, match=message):
        get_channel_layer()


def test_set_installs_a_layer_for_an_alias() -> None:
    layer = InMemoryChannelLayer()
    assert channel_layers.set("default", layer) is None
    assert get_channel_layer() is layer


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_django_settings_are_read_when_configured() -> None:
    out = _run(
        """
        from django.conf import settings
        settings.configure(CHANNEL_LAYERS={
            "default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer",
                        "CONFIG": {"capacity": 3}},
        })
        from channelworks.layers import get_channel_layer
        print(get_channel_layer().capacity)
        """
    )
    assert out == "3"


def test_empty_django_setting_means_no_layer() -> None:
    out = _run(
        """
        from django.conf import settings
        settings.configure(CHANNEL_LAYERS={})
        from channelworks.layers import get_channel_layer
        print(get_channel_layer())
        """
    )
    assert out == "None"


def test_core_runs_without_django_settings() -> None:
    out = _run(
        """
        import asyncio
        from django.urls import path
        from channelworks.consumers import AsyncWebsocketConsumer
        from channelworks.routing import URLRouter
        from channelworks.testing import WebsocketCommunicator
        from django.conf import settings

        class Echo(AsyncWebsocketConsumer):
            async def receive(self, text_data=None, bytes_data=None):
                await self.send(text_data=text_data)

        async def main():
            c = WebsocketCommunicator(URLRouter([path("e/", Echo.as_asgi())]), "/e/")
            await c.connect()
            await c.send_to("hi")
            print(await c.receive_from(), settings.configured)
            await c.disconnect()

        asyncio.run(main())
        """
    )
    assert out == "hi False"
