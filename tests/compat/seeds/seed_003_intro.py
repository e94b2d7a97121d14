# mypy: ignore-errors
# (the bases come from ``channels``, which mypy resolves to Channels itself, untyped)
# ruff: noqa: UP031
# (the notes format strings with ``%``; kept as written)
"""Seed 003 (introduction to Channels): the consumers and the two routers.

What had to change from the notes, and why:
- imports added: the notes use the classes, ``asyncio`` and the routers without importing;
- ``url(...)`` became ``re_path(...)``: Django 4 removed ``url``;
- consumers in routers are given as ``Consumer.as_asgi()``, not as the bare class: the notes
  predate Channels 3, since when a router calls an application with (scope, receive, send);
- ``AdminChatConsumer`` and ``PublicChatConsumer`` are routed but never defined in the notes;
  they are defined here as the notes' ``ChatConsumer``.
Left out: ``LogConsumer`` (needs the ORM; its ``connect(self, message)`` is Channels 1 style),
the ``self.channel_layer.send`` fragment (not awaited in the notes) and the
``AuthMiddlewareStack`` example (``channels.auth`` does not exist in channelworks yet).
"""

import asyncio

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.generic.websocket import WebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import re_path


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        self.username = "Anonymous"
        self.accept()
        self.send(text_data="[Welcome %s!]" % self.username)

    def receive(self, *, text_data):
        if text_data.startswith("/name"):
            self.username = text_data[5:].strip()
            self.send(text_data="[set your username to %s]" % self.username)
        else:
            self.send(text_data=self.username + ": " + text_data)

    def disconnect(self, message):
        pass


class PingConsumer(AsyncConsumer):
    async def websocket_connect(self, message):
        await self.send(
            {
                "type": "websocket.accept",
            }
        )

    async def websocket_receive(self, message):
        await asyncio.sleep(1)
        await self.send(
            {
                "type": "websocket.send",
                "text": "pong",
            }
        )


class ChattyBotConsumer(SyncConsumer):
    def telegram_message(self, message):
        """
        Simple echo handler for telegram messages in any chat.
        """
        self.send(
            {
                "type": "telegram.message",
                "text": "You said: %s" % message["text"],
            }
        )


class AdminChatConsumer(ChatConsumer):
    pass


class PublicChatConsumer(ChatConsumer):
    pass


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                re_path(r"^chat/admin/$", AdminChatConsumer.as_asgi()),
                re_path(r"^chat/$", PublicChatConsumer.as_asgi()),
            ]
        ),
        "telegram": ChattyBotConsumer.as_asgi(),
    }
)
