# mypy: ignore-errors
"""Seed 004 (chat service walkthrough), ``chat/routing.py``.

What had to change from the notes, and why:
- ``from chat import consumers`` became a relative import of ``seed_004_consumers`` (the seed's
  ``chat/consumers.py``), and ``ThumbnailGenerateConsumer``, used but never imported in the
  notes, is imported from it;
- line breaks after comments restored (lost in copying).
"""

from django.urls import path

from . import seed_004_consumers as consumers
from .seed_004_consumers import ThumbnailGenerateConsumer

websocket_urlpatterns = [
    # ws : //hostname/ws/echo/ 요청에 대응
    path("ws/echo/", consumers.EchoConsumer.as_asgi()),
    # ws : //hostname/ws/liveblog/ 요청에 대응
    path("ws/liveblog/", consumers.LiveblogConsumer.as_asgi()),
    # ws : //hostname/ws/chat/1234/chat/ 요청에 대응
    # URL을 통해 채팅방을 구별한다면?
    path("ws/chat/<int:room_pk>/chat/", consumers.ChatConsumer.as_asgi()),
]

# 워커 역할을 할 Consumer에 채널명(Channel name) 부여
worker_mapping = {
    "thumbnail-generate": ThumbnailGenerateConsumer.as_asgi(),
}
