"""Test tools: drive ASGI applications and consumers without a server, or serve them live.

``ChannelsLiveServerTestCase`` imports Django's test machinery, so it is loaded only when asked
for (``from channelworks.testing import ChannelsLiveServerTestCase``).
"""

from channelworks.testing.communicator import ApplicationCommunicator
from channelworks.testing.http import HttpCommunicator
from channelworks.testing.websocket import WebsocketCommunicator

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "ChannelworksLiveServerTestCase",
    "HttpCommunicator",
    "WebsocketCommunicator",
]


def __getattr__(name: str) -> object:
    if name in ("ChannelsLiveServerTestCase", "ChannelworksLiveServerTestCase"):
        from channelworks.testing import live

        return getattr(live, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
