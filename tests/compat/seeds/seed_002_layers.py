# mypy: ignore-errors
# (the bases come from ``channels``, which mypy resolves to Channels itself, untyped)
"""Seed 002 (notes on Channel Layers): the examples that run without a database.

What had to change from the notes, and why:
- imports added (``WebsocketConsumer``, ``get_channel_layer``, ``async_to_sync``): the notes
  show the classes and calls without them;
- the two halves of the group ``ChatConsumer`` (``connect``/``disconnect``, then ``...`` and
  ``receive``/``chat_message``) are joined into the one class they describe;
- the snippets with ``await`` at top level are wrapped in ``async def`` functions, since a
  module cannot await; their placeholders (``"channel_name"``, ``chats``,
  ``announcement_text``, ``{...}``) became parameters;
- ``get_channel_layer()`` is called inside those functions instead of at import time, when no
  layer is configured yet.
Left out: the ``Clients`` model example (needs the ORM) and the ``chat_message`` fragment
using ``send_json``, ``settings.MSG_TYPE_MESSAGE`` and ``scope["user"]`` (needs settings and
auth).
"""

from asgiref.sync import async_to_sync
from channels.generic.websocket import WebsocketConsumer
from channels.layers import get_channel_layer


#  이 예제에서는 동기식인 WebSocketConsumer를 사용하므로
# 비동기 채널 레이어 함수를 변환해야 합니다.
class ChatConsumer(WebsocketConsumer):
    def connect(self):
        async_to_sync(self.channel_layer.group_add)("chat", self.channel_name)

    def disconnect(self, close_code):
        async_to_sync(self.channel_layer.group_discard)("chat", self.channel_name)

    def receive(self, text_data):
        async_to_sync(self.channel_layer.group_send)(
            "chat",
            {
                "type": "chat.message",
                "text": text_data,
            },
        )

    def chat_message(self, event):
        self.send(text_data=event["text"])


# 동기 함수: 동기 코드에서 사용하려면 async_to_sync를 사용하면 됨
def send_from_sync_code(channel_name, message):
    channel_layer = get_channel_layer()
    async_to_sync(channel_layer.send)(channel_name, message)


# Single Channels: 단일 channel로 전송
async def send_hello(channel_name):
    channel_layer = get_channel_layer()
    await channel_layer.send(
        channel_name,
        {
            "type": "chat.message",
            "text": "Hello there!",
        },
    )


# Consumers 밖에서 사용하기
async def announce(chats, announcement_text):
    channel_layer = get_channel_layer()
    for chat_name in chats:
        await channel_layer.group_send(
            chat_name,
            {"type": "chat.system_message", "text": announcement_text},
        )
