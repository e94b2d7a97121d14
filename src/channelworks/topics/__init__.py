"""Topics: many topics over one WebSocket, with replies, presence and resume.

Declare ``Topic`` classes by pattern, route a ``TopicsConsumer`` to them, and push to a topic
from anywhere with ``broadcast``/``abroadcast``. The tutorial and the reference are in
docs/topics.md, the wire format in docs/protocol.md.
"""

from channelworks.topics.broadcast import abroadcast, broadcast
from channelworks.topics.consumer import HeartbeatTimeout, TopicsConsumer
from channelworks.topics.frames import ProtocolError
from channelworks.topics.kick import akick, kick
from channelworks.topics.names import TopicPattern, group_for
from channelworks.topics.observers import TopicsObserver, observers
from channelworks.topics.topic import JoinRefused, Reply, Topic

__all__ = [
    "HeartbeatTimeout",
    "JoinRefused",
    "ProtocolError",
    "Reply",
    "Topic",
    "TopicPattern",
    "TopicsConsumer",
    "TopicsObserver",
    "abroadcast",
    "akick",
    "broadcast",
    "group_for",
    "kick",
    "observers",
]
