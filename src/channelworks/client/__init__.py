"""A Python client for topics endpoints (docs/topics.md, docs/protocol.md), on asyncio and
``websockets``: for tests, for services that subscribe from outside Django, for load.

    async with Socket("ws://localhost:8000/ws/topics/") as socket:
        room = socket.topic("room:lobby", {"nick": "ada"})
        await room.join()
        room.on("new_msg", print)
        reply = await room.push("new_msg", {"body": "hi"})
"""

from channelworks.client.errors import ClientError, Disconnected, JoinError, PushError, PushTimeout
from channelworks.client.socket import Socket
from channelworks.client.topic import Topic

__all__ = [
    "ClientError",
    "Disconnected",
    "JoinError",
    "PushError",
    "PushTimeout",
    "Socket",
    "Topic",
]
