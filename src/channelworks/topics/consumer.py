"""``TopicsConsumer``: one WebSocket, many topics (docs/topics.md, docs/protocol.md).

How it keeps the protocol's promises:

- frames are handled one at a time, in arrival order, as every consumer's messages are
  (consumers/base.py): a join's reply, its missed messages and its ``presence_state`` leave
  before any live push of that topic, because live pushes are layer messages that wait for
  the join to finish;
- resume follows consumers/resume.py: the group is joined *before* its history is read, the
  missed messages are sent in offset order, and live copies of them are then dropped by
  offset (a ``ResumeFilter`` per joined topic with history, gone with the join);
- the socket's own silence is watched in ``receive`` itself: the server's ``receive`` is
  awaited under a deadline of two heartbeat intervals after the last frame (or after the
  consumer became ready to read again, if later: a slow handler is not silence), and a missed
  deadline becomes a ``topics.silent`` event that closes the socket with 4408, even when the
  peer is gone without a FIN (a half-open connection). Hazard: this cancels the server's
  ``receive`` at each deadline; ASGI servers implement it as a queue get (uvicorn, daphne,
  hypercorn) or websockets' ``recv``, both of which keep a message that was not returned;
- every group joined is recorded in ``groups_joined``, so the runtime leaves it however the
  consumer ends; presence is untracked in ``disconnect`` and on every leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from time import monotonic
from typing import Any, ClassVar

from channelworks.consumers.handlers import framework_class
from channelworks.consumers.resume import Resumed
from channelworks.consumers.websocket import AsyncWebsocketConsumer
from channelworks.exceptions import (
    ChannelLayerError,
    CloseConnection,
    InvalidPresence,
    LayerUnavailable,
)
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.history import POSITION_KEY, ResumeFilter
from channelworks.layers.presence import genuine_diff
from channelworks.layers.tokens import carries_token
from channelworks.logs import AggregatedLog
from channelworks.topics import frames as f
from channelworks.topics.broadcast import register_history
from channelworks.topics.frames import Codec, Frame, ProtocolError
from channelworks.topics.kick import meant
from channelworks.topics.observers import observers
from channelworks.topics.presence import diff_payload, state_payload
from channelworks.topics.resume import read_missed
from channelworks.topics.topic import JoinRefused, Reply, Topic, call
from channelworks.types import Message, Receive, Scope, Send

logger = logging.getLogger("channelworks.topics")
#: what marks the heartbeat watch's own ``topics.silent`` (no layer message can carry it)
_SILENCE = object()
_log = AggregatedLog()


class HeartbeatTimeout(CloseConnection):
    """Nothing heard from the client for two heartbeat intervals: close 4408."""

    code = f.HEARTBEAT_TIMEOUT


class LayerDown(CloseConnection):
    """The channel layer could not serve a join: close 1011, the client reconnects."""

    code = 1011


@framework_class("topics_push", "topics_kick", "topics_silent", "presence_diff")
class TopicsConsumer(AsyncWebsocketConsumer):
    """The endpoint: ``TopicsConsumer.as_asgi(topics=[Room, Notifications])`` in a URL route,
    or a subclass that sets ``topics``. The first class whose pattern matches a join's topic
    serves it."""

    #: the ``Topic`` classes this endpoint serves, tried in order
    topics: ClassVar[Sequence[type[Topic]]] = ()
    #: topics one socket may have joined at once; more joins get ``too_many_topics``
    max_topics: ClassVar[int] = 100
    #: seconds between the client's heartbeats; the socket is closed (4408) after two of them
    #: without any frame. ``None`` turns the watch off.
    heartbeat_interval: ClassVar[float | None] = 25.0
    #: close anonymous sockets with 4403 (the client stops) instead of serving them
    login_required: ClassVar[bool] = False

    joined: dict[str, Topic]

    def start_connection(self) -> None:
        super().start_connection()
        self.joined = {}
        self._codec = Codec()
        self._last_heard = monotonic()
        self._removals: list[tuple[Topic, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        interval = self.heartbeat_interval
        if interval and scope.get("type") == "websocket":
            receive = self._watch_silence(receive, 2 * interval)
        await super().__call__(scope, receive, send)

    def _watch_silence(self, receive: Receive, limit: float) -> Receive:
        async def watched() -> Message:
            # Silence is counted from the later of the last frame and this call: while a
            # handler runs, frames wait in the server's queue unread, and a slow handler is
            # not the client's silence.
            ready = monotonic()
            while True:
                remaining = max(self._last_heard, ready) + limit - monotonic()
                if remaining <= 0:
                    return {"type": "topics.silent", "source": _SILENCE}
                try:
                    async with asyncio.timeout(remaining):
                        return await receive()
                except TimeoutError:
                    continue  # the loop decides: a frame may have been heard meanwhile

        return watched

    # -- the socket ------------------------------------------------------------------------

    async def connect(self) -> None:
        offered = list(self.scope.get("subprotocols") or ())
        chosen = f.choose_subprotocol(offered)
        if chosen is None or self.channel_layer is None:
            if self.channel_layer is None:
                _log.event(
                    logger,
                    "no layer",
                    logging.ERROR,
                    "{name} needs a channel layer: refused {count} handshake(s)",
                    name=type(self).__qualname__,
                )
            await self.close()  # before accept: HTTP 403
            return
        self._codec = Codec(chosen)
        await self.accept(chosen if offered else None)
        if self.login_required and not getattr(self.scope.get("user"), "is_authenticated", False):
            raise CloseConnection(f.FORBIDDEN, "login required")  # closed by handle_exception

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self._last_heard = monotonic()
        frame = self._codec.decode_client_frame(text_data, bytes_data)
        event = frame.event
        if frame.topic == f.SOCKET_TOPIC:
            if event == f.HEARTBEAT:
                await self._reply(frame, Reply.ok())
            else:
                await self._reply(frame, Reply.error({"reason": "reserved_event"}))
        elif event == f.JOIN:
            await self._join(frame)
        elif event == f.LEAVE:
            topic = self.joined.get(frame.topic)
            if topic is not None:
                await self._drop(topic, "leave")
            await self._reply(frame, Reply.ok())
        elif f.is_reserved(event):
            await self._reply(frame, Reply.error({"reason": "reserved_event"}))
        else:
            await self._push_in(frame)
        if self._removals:
            await self._remove_pending()

    async def disconnect(self, code: int) -> None:
        for topic in list(self.joined.values()):
            await self._drop(topic, "disconnect")

    async def topics_silent(self, message: Message) -> None:
        """The client has been silent for two heartbeat intervals (see ``__call__``). Only
        the watch itself says so: the same type from the channel layer (an application
        forwarding client JSON into a topic's group) closes nothing."""
        if message.get("source") is not _SILENCE:
            _log.event(
                logger,
                "forged silence",
                logging.WARNING,
                "Ignored {count} topics.silent message(s) from the channel layer",
            )
            return
        raise HeartbeatTimeout(reason="heartbeat timeout")

    # -- joins -----------------------------------------------------------------------------

    def route(self, name: str) -> tuple[type[Topic], dict[str, str]] | None:
        """The class serving topic ``name`` and the pattern's params, or ``None``."""
        for cls in self.topics:
            params = cls.topic_pattern.match(name)
            if params is not None:
                return cls, params
        return None

    async def _join(self, frame: Frame) -> None:
        if frame.ref is None:
            raise ProtocolError(reason="a join needs a ref")
        name, payload = frame.topic, frame.payload
        params, since = payload.get("params", {}), payload.get("since")
        if not isinstance(params, dict):
            raise ProtocolError(reason="join params must be an object")
        routed = self.route(name)
        if routed is None:
            await self._refuse(frame, None, "unknown_topic")
            return
        cls, pattern_params = routed
        old = self.joined.get(name)
        if old is not None:
            await self._drop(old, "rejoin")
        if len(self.joined) >= self.max_topics:
            await self._refuse(frame, cls, "too_many_topics")
            return
        topic = cls(self, name, pattern_params, frame.ref)
        topic.held = []  # a push in join waits for the ok reply (dropped with a refusal)
        try:
            result = await call(topic.join, params)
            if result is False:
                raise JoinRefused("unauthorized")
            if result is not None and not isinstance(result, dict):
                raise TypeError(f"{cls.__qualname__}.join() returned {type(result).__name__}")
            resumed, missed = await self._subscribe(topic, since)
        except JoinRefused as exc:
            await self._forget(topic)
            await self._refuse(frame, cls, str(exc.reason))
            return
        except CloseConnection:  # the hook closes the whole socket, as in any handler
            await self._forget(topic)
            raise
        except LayerUnavailable as exc:
            # Not the topic refusing: a refusal would close the topic for good on the
            # client. 1011 makes it reconnect with backoff and rejoin everything.
            with contextlib.suppress(ChannelLayerError):
                await self._forget(topic)
            raise LayerDown(reason="channel layer unavailable") from exc
        except InvalidPresence as exc:  # a key or meta from the client, most likely
            await self._forget(topic)
            self._log_invalid_presence(topic, exc)
            await self._refuse(frame, cls, "invalid_presence")
            return
        except Exception as exc:
            await self._forget(topic)
            self._log_crash(topic, "join", exc)
            await self._refuse(frame, cls, "join_crashed")
            return
        response: dict[str, Any] = {"response": result or {}}
        if resumed is not None:
            response.update(resumed.as_dict())
        await self._reply(frame, Reply.ok(response))
        for message in missed:
            await self._push_frame(topic, message)
        if resumed is not None and resumed.position is not None:
            # Live copies of what the reply's position covers are dropped: the missed ones
            # just sent, and on any join those broadcast between group_add and the read of
            # the log (the client starts at that position; one at or before it would be a
            # duplicate after its next resume, or move its position back).
            topic.resume_filter = ResumeFilter()
            topic.resume_filter.resumed(resumed.position)
        if cls.presence and self._has("presence"):
            presence: Any = self._layer()  # typed loosely: the presence API is new in layers
            state = await presence.presence(topic.group)
            await self._send_frame(
                Frame(topic.join_ref, None, name, f.PRESENCE_STATE, state_payload(state))
            )
        held, topic.held = topic.held or [], None
        for event, payload in held:
            await self._push_frame(topic, {"event": event, "payload": payload})
        if observers:
            observers.notify("joined", cls.pattern, name, recovered=response.get("recovered"))

    async def _subscribe(
        self, topic: Topic, since: object
    ) -> tuple[Resumed | None, list[dict[str, Any]]]:
        """Join ``topic``'s group, then read what the join replays (topics with history)."""
        self.joined[topic.name] = topic
        self._add_group(topic.group)
        layer = self._layer()
        await layer.group_add(topic.group, self._channel())
        options = type(topic).history_options
        if options is None:
            return None, []
        register_history(layer, type(topic).topic_pattern, options)
        return await read_missed(layer, topic.group, options, since)

    async def _refuse(self, frame: Frame, cls: type[Topic] | None, reason: str) -> None:
        await self._reply(frame, Reply.error({"reason": reason}))
        if observers:
            observers.notify("refused", cls.pattern if cls else None, frame.topic, reason)

    # -- pushes ----------------------------------------------------------------------------

    async def _push_in(self, frame: Frame) -> None:
        topic = self.joined.get(frame.topic)
        if topic is None or frame.join_ref != topic.join_ref:
            await self._reply(frame, Reply.error({"reason": "unmatched_topic"}))
            return
        pattern = type(topic).pattern
        if observers:
            observers.notify("pushed", pattern, topic.name, frame.event)
        started = monotonic()
        try:
            result = await call(topic.handle_in, frame.event, frame.payload)
            reply = _as_reply(result, type(topic))
        except CloseConnection:  # the hook closes the whole socket, as in any handler
            raise
        except InvalidPresence as exc:  # the topic stays joined: its state is unchanged
            self._log_invalid_presence(topic, exc)
            reply = Reply.error({"reason": "invalid_presence"})
        except Exception as exc:
            await self._crashed(topic, frame.event, exc)
            return
        if reply is not None and frame.ref is not None:
            await self._reply(frame, reply)
            if observers:
                observers.notify(
                    "replied", pattern, topic.name, frame.event, reply.status, monotonic() - started
                )

    async def topics_push(self, message: Message) -> None:
        """A broadcast to a topic (``topics.broadcast``): forward it if this socket joined
        and channelworks sent it (it carries the layer's token, layers/tokens.py)."""
        topic = self.joined.get(message.get("topic", ""))
        if topic is None or not self._genuine(message):
            return
        resume = topic.resume_filter
        if resume is not None and not resume.fresh(message):
            return
        await self._push_frame(topic, message)

    async def topics_kick(self, message: Message) -> None:
        """``topics.kick`` (topics/kick.py): leave the topic if this socket is meant."""
        topic = self.joined.get(message.get("topic", ""))
        if topic is None or not self._genuine(message):
            return
        if not meant(message, self.scope, self.channel_name):
            return
        reason = message.get("reason")
        self.remove_later(topic, reason if isinstance(reason, str) else "kicked")
        await self._remove_pending()

    def _genuine(self, message: Message) -> bool:
        """Whether a ``topics.push``/``topics.kick`` carries the layer's token; one that does
        not (an application forwarding client JSON into a topic's group) is logged,
        aggregated, and ignored."""
        if carries_token(self.channel_layer, message):
            return True
        _log.event(
            logger,
            ("forged", message.get("type")),
            logging.WARNING,
            "Ignored {count} {kind} message(s) without the layer's token (forwarded by the "
            "application into group_send, or forged)",
            kind=str(message.get("type")),
        )
        return False

    async def _push_frame(self, topic: Topic, message: Message) -> None:
        value = message.get(POSITION_KEY)
        position = (value[0], value[1]) if isinstance(value, (list, tuple)) else None
        event, payload = message.get("event"), message.get("payload")
        if not isinstance(event, str) or not isinstance(payload, dict):
            _log.event(
                logger, "bad push", logging.WARNING, "Dropped {count} malformed topic push(es)"
            )
            return
        sent = await self._send_frame(
            Frame(topic.join_ref, None, topic.name, event, payload, position)
        )
        if sent and observers:
            observers.notify("delivered", type(topic).pattern, topic.name, event)

    async def push_to_client(self, topic: Topic, event: str, payload: dict[str, Any]) -> None:
        """``Topic.push``: ``event`` to this socket alone."""
        if f.is_reserved(event):
            raise ValueError(f"cannot push event {event!r}: reserved by the protocol")
        if topic.held is not None:  # its join is running: sent after the ok reply
            topic.held.append((event, payload))
        elif self.joined.get(topic.name) is topic:
            await self._push_frame(topic, {"event": event, "payload": payload})

    # -- presence --------------------------------------------------------------------------

    async def track(self, topic: Topic, key: str, meta: dict[str, Any]) -> dict[str, Any]:
        """``Topic.track``: track (or update) this socket on the topic's presence; -> the
        meta as the layer stored it (with its ``phx_ref``)."""
        if not self._has("presence"):
            _log.event(
                logger,
                "no presence",
                logging.WARNING,
                "Topic.track() ignored {count} time(s): the channel layer has no presence",
            )
            return dict(meta)
        layer: Any = self._layer()
        channel = self._channel()
        stored: dict[str, Any]
        if topic.tracked:
            stored = await layer.presence_update(topic.group, channel, key, meta)
            return stored
        stored = await layer.presence_track(topic.group, channel, key, meta)
        topic.tracked = True
        return stored

    async def presence_diff(self, message: Message) -> None:
        """A presence change in one of this socket's groups (the layer's ``presence.diff``)."""
        if not genuine_diff(self.channel_layer, message):
            return
        for topic in self.joined.values():
            if topic.group == message.get("group") and type(topic).presence:
                payload = diff_payload(message)
                await self._send_frame(
                    Frame(topic.join_ref, None, topic.name, f.PRESENCE_DIFF, payload)
                )

    # -- leaving ---------------------------------------------------------------------------

    def remove_later(self, topic: Topic, reason: str) -> None:
        """``Topic.close``: remove ``topic`` once the current hook returns."""
        self._removals.append((topic, reason))

    async def _remove_pending(self) -> None:
        removals, self._removals = self._removals, []
        for topic, reason in removals:
            if self.joined.get(topic.name) is topic:
                await self._drop(topic, "closed")
                await self._send_frame(
                    Frame(topic.join_ref, None, topic.name, f.CLOSE, {"reason": reason})
                )

    async def _crashed(self, topic: Topic, event: str, exc: Exception) -> None:
        self._log_crash(topic, event, exc)
        await self._forget(topic)
        await self._send_frame(
            Frame(topic.join_ref, None, topic.name, f.ERROR, {"reason": "crashed"})
        )
        if observers:
            observers.notify("crashed", type(topic).pattern, topic.name, event, exc)
            observers.notify("left", type(topic).pattern, topic.name, "crashed")

    async def _drop(self, topic: Topic, reason: str) -> None:
        """Leave ``topic``: out of its group and presence, then its ``leave`` hook."""
        if self.joined.get(topic.name) is not topic:
            return
        await self._forget(topic)
        try:
            await call(topic.leave)
        except Exception as exc:
            self._log_crash(topic, "leave", exc)
        if observers:
            observers.notify("left", type(topic).pattern, topic.name, reason)

    async def _forget(self, topic: Topic) -> None:
        """Drop the bookkeeping, group and presence of ``topic`` (no hook runs)."""
        if self.joined.get(topic.name) is topic:
            del self.joined[topic.name]
        layer: Any = self.channel_layer
        channel = self.channel_name
        if layer is None or channel is None:
            return
        if topic.group in self.groups_joined and not any(
            t.group == topic.group for t in self.joined.values()
        ):
            self.groups_joined = tuple(g for g in self.groups_joined if g != topic.group)
            await layer.group_discard(topic.group, channel)
        if topic.tracked:
            topic.tracked = False
            await layer.presence_untrack(topic.group, channel)

    # -- helpers ---------------------------------------------------------------------------

    def _add_group(self, group: str) -> None:
        if group not in self.groups_joined:
            self.groups_joined = (*self.groups_joined, group)

    def _layer(self) -> BaseChannelLayer:
        layer = self.channel_layer
        if layer is None:  # connect() refused the socket without one
            raise RuntimeError("TopicsConsumer without a channel layer")
        return layer

    def _channel(self) -> str:
        if self.channel_name is None:
            raise RuntimeError("TopicsConsumer without a channel")
        return self.channel_name

    def _has(self, extension: str) -> bool:
        return extension in getattr(self.channel_layer, "extensions", ())

    async def _reply(self, frame: Frame, reply: Reply) -> None:
        if frame.ref is None:
            return
        payload = {"status": reply.status, "response": reply.response}
        if not await self._send_frame(
            Frame(frame.join_ref, frame.ref, frame.topic, f.REPLY, payload)
        ):
            unsent = {"status": "error", "response": {"reason": "unencodable_reply"}}
            await self._send_frame(Frame(frame.join_ref, frame.ref, frame.topic, f.REPLY, unsent))

    async def _send_frame(self, frame: Frame) -> bool:
        """Send ``frame``; ``False`` when this socket's subprotocol cannot carry it (bytes or
        NaN to a JSON socket, an integer beyond 64 bits): it is dropped and counted in the
        log, and the socket serves on."""
        try:
            data = self._codec.encode(frame)
        except (TypeError, ValueError, OverflowError) as exc:
            _log.event(
                logger,
                ("unencodable", self._codec.subprotocol),
                logging.WARNING,
                "Dropped {count} frame(s) that {subprotocol} cannot carry ({error}; "
                "last: {event!r} on {topic!r})",
                subprotocol=self._codec.subprotocol,
                error=type(exc).__name__,
                event=frame.event,
                topic=frame.topic,
            )
            return False
        if isinstance(data, str):
            await self.send(text_data=data)
        else:
            await self.send(bytes_data=data)
        return True

    def _log_invalid_presence(self, topic: Topic, exc: InvalidPresence) -> None:
        _log.event(
            logger,
            ("invalid presence", type(topic)),
            logging.WARNING,
            "{name}: {count} track/update call(s) refused by the layer's presence, answered "
            "invalid_presence (last: {error})",
            name=type(topic).__qualname__,
            error=exc,
        )

    def _log_crash(self, topic: Topic, hook: str, exc: Exception) -> None:
        key = (type(topic), hook, type(exc))
        if key not in _crashes_logged:
            _crashes_logged.add(key)
            logger.error(
                "%s.%s failed on %r; the socket got an error for the topic",
                type(topic).__qualname__,
                "handle_in" if hook not in ("join", "leave") else hook,
                topic.name,
                exc_info=exc,
            )
            return
        _log.event(
            logger,
            key,
            logging.ERROR,
            "{name}.{hook} failed {count} more time(s) ({error})",
            name=type(topic).__qualname__,
            hook=hook,
            error=type(exc).__name__,
        )


#: (topic class, hook, exception class) whose traceback was logged once already
_crashes_logged: set[tuple[type, str, type]] = set()


def _as_reply(result: object, cls: type[Topic]) -> Reply | None:
    if result is None or isinstance(result, Reply):
        return result
    if isinstance(result, dict):
        return Reply.ok(result)
    raise TypeError(
        f"{cls.__qualname__}.handle_in() returned {type(result).__name__}; "
        "return a dict, a Reply or None"
    )


__all__ = ["HeartbeatTimeout", "TopicsConsumer"]
