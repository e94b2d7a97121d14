"""Every socket route of the site, gathered from the apps (as ``urls.py`` gathers pages)."""

from channelworks.demo.blog.routing import websocket_urlpatterns as blog_routes
from channelworks.demo.chat.routing import websocket_urlpatterns as chat_routes
from channelworks.demo.chat.topics import ActivityTopic, RoomTopic
from channelworks.demo.echo.routing import websocket_urlpatterns as echo_routes
from channelworks.demo.social.routing import websocket_urlpatterns as social_routes
from channelworks.demo.social.topics import OnlineTopic, PostTopic
from channelworks.demo.thumbnails.consumers import THUMBNAIL_CHANNEL, ThumbnailConsumer
from channelworks.routing import path
from channelworks.topics import TopicsConsumer

#: the site's topics socket: presence and typing (chat/topics.py, social/topics.py)
topic_routes = [
    path(
        "ws/topics/",
        TopicsConsumer.as_asgi(topics=[RoomTopic, ActivityTopic, OnlineTopic, PostTopic]),
        name="topics",
    )
]

websocket_urlpatterns = [*chat_routes, *social_routes, *blog_routes, *echo_routes, *topic_routes]

#: consumers reached by channel name, for the worker
channel_routes = {THUMBNAIL_CHANNEL: ThumbnailConsumer.as_asgi()}
