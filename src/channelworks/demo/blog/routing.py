from channelworks.demo.blog.consumers import LiveblogConsumer
from channelworks.routing import path

websocket_urlpatterns = [
    path("ws/liveblog/", LiveblogConsumer.as_asgi(), name="liveblog"),
]
