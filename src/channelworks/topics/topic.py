"""``Topic``: what a project subclasses, one class per pattern of topic names.

A ``Topic`` instance lives while one socket has joined one topic: it is created for the join
and dropped after ``leave`` (or the socket's end). Hooks may be ``async def`` (run on the
event loop) or plain ``def`` (run in a worker thread, so they may use the ORM).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from asgiref.sync import sync_to_async

from channelworks.exceptions import ChannelworksError
from channelworks.layers.history import HistoryOptions, ResumeFilter
from channelworks.topics.names import TopicPattern, group_for

if TYPE_CHECKING:
    from channelworks.topics.consumer import TopicsConsumer


class JoinRefused(ChannelworksError):
    """Raise in ``Topic.join`` to refuse the join; the client gets ``{"reason": reason}``."""

    def __init__(self, reason: str = "unauthorized") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    """What ``handle_in`` returns to answer a push: ``Reply.ok({...})``/``Reply.error({...})``
    (a plain dict is an ok reply; ``None``, no reply)."""

    status: str
    response: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, response: Mapping[str, Any] | None = None) -> Reply:
        return cls("ok", dict(response or {}))

    @classmethod
    def error(cls, response: Mapping[str, Any] | None = None) -> Reply:
        return cls("error", dict(response or {}))


#: the classes with a pattern, in definition order, for ``broadcast`` (which needs the history
#: options of the topic it sends to)
_registry: dict[str, type[Topic]] = {}


class Topic:
    """Subclass with a ``pattern`` and override the hooks::

        class Room(Topic):
            pattern = "room:{slug}"
            history = {"size": 500, "ttl": 3600}  # keep the last 500 messages for resume
            presence = True  # send presence_state / presence_diff to members

            async def join(self, params):
                if not self.user.is_authenticated:
                    raise JoinRefused("login_required")
                await self.track(self.user.username, {"online_at": time.time()})

            async def handle_in(self, event, payload):
                if event == "new_msg":
                    await self.broadcast("new_msg", {"body": payload["body"]})
                    return Reply.ok()
                return Reply.error({"reason": "unknown_event"})

    ``self.params`` holds the pattern's values (``{"slug": "lobby"}``), ``self.name`` the
    topic, ``self.scope`` the socket's scope (``self.user`` its user).
    """

    #: the names this class serves: literal text and ``{param}``s (docs/topics.md)
    pattern: ClassVar[str]
    #: ``{"size": n, "ttl": seconds}`` to keep a log of broadcasts for resume; ``None``: none
    history: ClassVar[Mapping[str, Any] | HistoryOptions | None] = None
    #: whether members get ``presence_state`` after joining and ``presence_diff`` afterwards
    presence: ClassVar[bool] = False

    topic_pattern: ClassVar[TopicPattern]
    history_options: ClassVar[HistoryOptions | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "pattern" in cls.__dict__:
            cls.topic_pattern = TopicPattern(cls.pattern)
            _registry[cls.pattern] = cls
        if "history" in cls.__dict__ or "pattern" in cls.__dict__:
            value = cls.history
            if value is None or isinstance(value, HistoryOptions):
                cls.history_options = value
            elif isinstance(value, Mapping):
                unknown = set(value) - {"size", "ttl"}
                if unknown:
                    raise ValueError(f"{cls.__qualname__}.history: unknown keys {sorted(unknown)}")
                cls.history_options = HistoryOptions(**value)
            else:
                raise TypeError(f"{cls.__qualname__}.history must be a dict or None")

    def __init__(
        self, consumer: TopicsConsumer, name: str, params: dict[str, str], join_ref: str
    ) -> None:
        self.socket = consumer
        self.scope = consumer.scope
        self.name = name
        self.params = params
        self.join_ref = join_ref
        self.group = group_for(name)
        #: whether ``track`` was called (the socket is untracked when it leaves)
        self.tracked = False
        #: set by a join that replayed missed messages: drops their live copies
        self.resume_filter: ResumeFilter | None = None
        #: ``push``es made while ``join`` runs, sent after the ok reply (``None`` after it)
        self.held: list[tuple[str, dict[str, Any]]] | None = None

    @property
    def user(self) -> Any:
        """``scope["user"]`` (set by the auth middleware), or ``None``."""
        return self.scope.get("user")

    # -- hooks -----------------------------------------------------------------------------

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """Authorise the join; return the reply's response (``None``: ``{}``), or raise
        ``JoinRefused(reason)`` (returning ``False`` refuses with ``"unauthorized"``).
        ``params`` are the client's join params (``self.params``: the pattern's)."""
        return None

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        """A client push: return a reply (a dict is ok), or ``None`` for none. The default
        answers every event with an error ``{"reason": "unhandled_event"}``."""
        return Reply.error({"reason": "unhandled_event"})

    async def leave(self) -> None:
        """The socket left the topic (a leave, the socket's end, or removal by the server)."""

    # -- actions ---------------------------------------------------------------------------

    async def push(self, event: str, payload: dict[str, Any] | None = None) -> None:
        """Send ``event`` to this socket alone (no position: not part of the history)."""
        await self.socket.push_to_client(self, event, dict(payload or {}))

    async def broadcast(self, event: str, payload: dict[str, Any] | None = None) -> None:
        """Send ``event`` to every member of this topic, this socket included."""
        from channelworks.topics.broadcast import abroadcast

        await abroadcast(self.name, event, payload, layer=self.socket.channel_layer)

    async def track(self, key: str, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Track this socket on the topic's presence under ``key`` (a user name or id) with
        ``meta``; untracked when the socket leaves. Calling it again updates the meta.
        Returns the meta as stored (the layer adds ``phx_ref`` and ``joined_at``)."""
        return await self.socket.track(self, key, dict(meta or {}))

    async def close(self, reason: str = "closed") -> None:
        """Remove this socket from the topic once the current hook returns; the client gets
        ``close`` with ``reason`` and does not rejoin on its own."""
        self.socket.remove_later(self, reason)


async def call(hook: Any, *args: Any) -> Any:
    """Await an ``async def`` hook, run a plain one in a worker thread."""
    if inspect.iscoroutinefunction(hook):
        return await hook(*args)
    result = await sync_to_async(hook, thread_sensitive=True)(*args)
    return await result if inspect.isawaitable(result) else result


def registered(topic: str) -> type[Topic] | None:
    """The last defined ``Topic`` class whose pattern matches ``topic``."""
    for cls in reversed(_registry.values()):
        if cls.topic_pattern.match(topic) is not None:
            return cls
    return None


__all__ = ["JoinRefused", "Reply", "Topic", "call", "registered"]
