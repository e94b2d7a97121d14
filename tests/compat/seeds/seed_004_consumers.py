# mypy: ignore-errors
# (the bases come from ``channels``, which mypy resolves to Channels itself, untyped)
# ruff: noqa: UP031
"""Seed 004 (chat service walkthrough), ``chat/consumers.py``.

What had to change from the notes, and why:
- spaces restored after ``def``/``class`` and line breaks after comments (lost in copying);
- imports added (``json``, ``WebsocketConsumer``);
- one long comment wrapped to fit the line length;
- each ``self.send(json.dumps({...})`` in ``LiveblogConsumer`` lacked its closing paren.
Added (not in the notes, written in their style for the routes the notes declare):
``ChatConsumer`` for ``ws/chat/<int:room_pk>/chat/`` and ``ThumbnailGenerateConsumer`` for the
``thumbnail-generate`` worker channel.
"""

import json

from asgiref.sync import async_to_sync
from channels.consumer import SyncConsumer
from channels.generic.websocket import WebsocketConsumer


# 웹소캣 클라이언트와 1:1 통신
class EchoConsumer(WebsocketConsumer):
    def connect(self):
        # 들어오는 웹소캣 연결요청을 모두 허용한다.
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        # 웹소캣 클라이언트로부터의 텍스트/바이러니 메세지를 그대로 회신한다.
        self.send(text_data)


# 라이브블로그에 연결된 웹소캣 클라이언트에게 포스팅 생성/수정/삭제 시에 즉각 알림을 보내어
# 브라우저 새로고침없이도 웹 프론트엔드에서 즉각적으로
# 포스팅 추가/수정/삭제를 반영할 수 있도록 한다.
class LiveblogConsumer(WebsocketConsumer):
    # WebsocketConsumer에서는 self.groups에 지정된 그룹에 자동으로 add/discard를 수행한다.
    groups = ["liveblog"]

    def connect(self):
        # 들어오는 웹소캣 연결요청을 모두 허용한다.
        self.accept()

    # 그룹을 통해 받은 메세지를 그대로 웹소캣 클라이언트에게 전달한다.
    def liveblog_post_created(self, event_dict):
        post_id = event_dict["post_id"]
        self.send(
            json.dumps(
                {
                    "type": "liveblog.post.created",
                    "post_id": post_id,
                }
            )
        )

    def liveblog_post_updated(self, event_dict):
        post_id = event_dict["post_id"]
        self.send(
            json.dumps(
                {
                    "type": "liveblog.post.updated",
                    "post_id": post_id,
                }
            )
        )

    def liveblog_post_deleted(self, event_dict):
        post_id = event_dict["post_id"]
        self.send(
            json.dumps(
                {
                    "type": "liveblog.post.deleted",
                    "post_id": post_id,
                }
            )
        )


# (노트에 없는 코드) ws://hostname/ws/chat/1234/chat/ 요청: URL의 room_pk로 채팅방을 구별한다.
class ChatConsumer(WebsocketConsumer):
    def connect(self):
        # 채팅방마다 그룹을 하나씩 둔다.
        room_pk = self.scope["url_route"]["kwargs"]["room_pk"]
        self.group_name = "chat-%d" % room_pk
        async_to_sync(self.channel_layer.group_add)(self.group_name, self.channel_name)
        self.accept()

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)(self.group_name, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        # 받은 메세지를 같은 채팅방의 모든 웹소캣 클라이언트에게 보낸다.
        async_to_sync(self.channel_layer.group_send)(
            self.group_name,
            {
                "type": "chat.message",
                "message": text_data,
            },
        )

    def chat_message(self, event_dict):
        self.send(
            json.dumps(
                {
                    "type": "chat.message",
                    "message": event_dict["message"],
                }
            )
        )


# (노트에 없는 코드) 워커: "thumbnail-generate" 채널로 들어온 썸네일 생성 요청을 처리한다.
class ThumbnailGenerateConsumer(SyncConsumer):
    def thumbnail_generate(self, message):
        # 썸네일을 만든 뒤, 결과를 "thumbnails" 그룹에 알린다.
        thumbnail = "thumbnails/%d.jpg" % message["id"]
        async_to_sync(self.channel_layer.group_send)(
            "thumbnails",
            {
                "type": "thumbnail.generated",
                "id": message["id"],
                "thumbnail": thumbnail,
            },
        )
