"""Test tools: drive ASGI applications and consumers without a server."""

from channelworks.testing.communicator import ApplicationCommunicator
from channelworks.testing.http import HttpCommunicator
from channelworks.testing.websocket import WebsocketCommunicator

__all__ = ["ApplicationCommunicator", "HttpCommunicator", "WebsocketCommunicator"]
