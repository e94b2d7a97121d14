from channelworks.demo.chat.consumers import ChatConsumer
from channelworks.routing import path

websocket_urlpatterns = [
    path("ws/chat/<slug:slug>/", ChatConsumer.as_asgi(), name="chat"),
]
