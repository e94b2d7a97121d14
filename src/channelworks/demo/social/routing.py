from channelworks.demo.social.consumers import NotificationConsumer
from channelworks.routing import path

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="notifications"),
]
