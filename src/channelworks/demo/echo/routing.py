from channelworks.demo.echo.consumers import EchoConsumer
from channelworks.routing import path

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi(), name="echo"),
]
