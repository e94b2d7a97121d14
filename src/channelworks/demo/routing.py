"""Every socket route of the site, gathered from the apps (as ``urls.py`` gathers pages)."""

from channelworks.demo.blog.topics import LiveblogTopic
from channelworks.demo.chat.topics import ActivityTopic, RoomTopic
from channelworks.demo.echo.routing import websocket_urlpatterns as echo_routes
from channelworks.demo.social.topics import NotificationsTopic, OnlineTopic, PostTopic
from channelworks.demo.thumbnails.consumers import THUMBNAIL_CHANNEL, ThumbnailConsumer
from channelworks.routing import path
from channelworks.topics import TopicsConsumer

#: the site's topics socket, the one every live page opens: chat rooms, their activity,
#: notifications, who is online, posts and the live blog (the apps' topics.py)
TOPICS = [RoomTopic, ActivityTopic, NotificationsTopic, OnlineTopic, PostTopic, LiveblogTopic]

topic_routes = [path("ws/topics/", TopicsConsumer.as_asgi(topics=TOPICS), name="topics")]

#: the echo page keeps a consumer of its own: the smallest one there is
websocket_urlpatterns = [*echo_routes, *topic_routes]

#: consumers reached by channel name, for the worker
channel_routes = {THUMBNAIL_CHANNEL: ThumbnailConsumer.as_asgi()}
