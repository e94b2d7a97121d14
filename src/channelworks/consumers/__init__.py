"""Consumers: ASGI applications that handle one connection each, message by message."""

from channelworks.consumers.base import AsyncConsumer, SyncConsumer
from channelworks.consumers.handlers import get_handler_name
from channelworks.consumers.http import AsyncHttpConsumer
from channelworks.consumers.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)

__all__ = [
    "AsyncConsumer",
    "AsyncHttpConsumer",
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonWebsocketConsumer",
    "SyncConsumer",
    "WebsocketConsumer",
    "get_handler_name",
]
