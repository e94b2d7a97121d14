"""WebSocket consumers: raw text/bytes and JSON, each in a sync and an async flavour.

One implementation: ``WebsocketCore`` holds the protocol logic as coroutines. The async
consumers expose those coroutines as their API; the sync consumers expose blocking twins made
by ``sync_api`` and run user hooks in worker threads. The only per-flavour code is the default
hooks, because they are the user's to override and must have the flavour's shape.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from asyncio import current_task
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from time import monotonic
from typing import Any, ClassVar

from asgiref.sync import markcoroutinefunction

from channelworks.consumers.base import AsyncConsumer, SyncConsumer
from channelworks.consumers.handlers import framework_class
from channelworks.consumers.presence import PresenceHooks
from channelworks.consumers.sync_pool import call_async
from channelworks.exceptions import (
    AcceptConnection,
    CloseConnection,
    DenyConnection,
    InvalidFrame,
    RateLimited,
    SlowClient,
    StopConsumer,
)
from channelworks.limits.bucket import Inbound
from channelworks.limits.config import Limits, resolve
from channelworks.limits.guard import admit, user_key
from channelworks.limits.logs import limit_log
from channelworks.limits.logs import logger as limits_logger
from channelworks.limits.outbound import SEND_CODES, SendWatch, cancel_sends
from channelworks.limits.stats import stats
from channelworks.ops.connections import utf8_size
from channelworks.types import Message

logger = logging.getLogger("channelworks.consumers")

#: close code for an unexpected error in a handler (RFC 6455 "internal error")
INTERNAL_ERROR = 1011
#: the code ``disconnect`` gets when the connection was lost without a close frame
ABNORMAL_CLOSURE = 1006
#: the longest a consumer waits after dropping a frame (policy "drop") before reading on
DROP_PAUSE = 0.1


@framework_class(
    "websocket_connect",
    "websocket_receive",
    "websocket_disconnect",
    "channelworks_session_ended",
    "channelworks_admin_close",
)
class WebsocketCore(PresenceHooks, AsyncConsumer):
    """Protocol logic shared by every WebSocket consumer; subclass one of the four below."""

    #: groups joined on connect and left on disconnect
    groups: ClassVar[Iterable[str] | None] = None
    #: this consumer's limits (docs/limits.md): ``None`` for the process-wide ones, a dict of
    #: overrides of those, or a whole ``Limits`` (``Limits.off()``: none)
    limits: ClassVar[Limits | Mapping[str, Any] | None] = None
    #: what ``direct_receive`` found for a class, in that class's own ``__dict__`` (found
    #: with its first frame; read there, never inherited from a parent)
    _direct_receive: ClassVar[object] = None

    def limit_key(self) -> Hashable | None:
        """The user the per-user limits count this connection under; ``None``: anonymous.

        The default is the authenticated ``scope["user"]``'s primary key. Override for users
        known otherwise (a token); it runs on the event loop before ``connect()``.
        """
        return user_key(self.scope)

    def rate_limit_error(self) -> Any:
        """The JSON content sent when frames start being dropped (policy ``"drop"``), at the
        start of each run of dropped frames; ``None`` sends nothing. JSON consumers only; it
        runs on the event loop."""
        return {"error": "rate_limited"}

    # -- ASGI event handlers -------------------------------------------------------------------

    async def websocket_connect(self, message: Message) -> None:
        guard = admit(self.scope, resolve(self.limits), self.limit_key(), monotonic(), owner=self)
        if isinstance(guard, str):  # refused (counted and logged): HTTP 403 before accept
            await self._close()
            return
        self._guard, self._inbound, self._send_watch = guard, guard.inbound, guard.watch
        if self.groups:
            await self.join_groups(self.groups)
        try:
            await self.call_hook(self.connect)
        except AcceptConnection:
            await self._accept()
        except DenyConnection:
            await self._close()

    @markcoroutinefunction
    def websocket_receive(self, message: Message) -> Awaitable[None]:
        """A frame from the client: counted, checked against the inbound limits, and handed
        to ``receive``. A plain ``def`` marked as a coroutine function, which returns the
        awaitable of what it calls: one coroutine fewer per frame (dispatch awaits it, and a
        subclass's ``await super().websocket_receive(message)`` works as with an ``async
        def``)."""
        text = message.get("text")
        size = len(text) if text is not None else len(message.get("bytes") or b"")
        conn = self._conn
        if conn is not None:  # the operators' counters, kept here: this runs once per frame
            conn.frames_in += 1
            conn.bytes_in += size if text is None or text.isascii() else utf8_size(text)
        inbound = self._inbound
        if inbound is not None:
            if not inbound.allow(monotonic(), size):
                return self._over_limit(inbound, size)
            inbound.dropping = False
        receive: Callable[..., Awaitable[None]] = self.receive
        # The hot path: no call_hook coroutine per frame (see direct_receive)
        direct = type(self).__dict__.get("_direct_receive")
        if direct is None:
            direct = direct_receive(type(self))
        if getattr(receive, "__func__", None) is direct:
            if text is not None:
                return receive(text_data=text)
            return receive(bytes_data=message.get("bytes"))
        if direct is _OFFERS:  # a sync consumer's: layer messages may go along (batches.py)
            if text is not None:
                return self._call_receive(receive, {"text_data": text})
            return self._call_receive(receive, {"bytes_data": message.get("bytes")})
        if text is not None:
            return self.call_hook(receive, text_data=text)
        return self.call_hook(receive, bytes_data=message.get("bytes"))

    async def websocket_disconnect(self, message: Message) -> None:
        await self._ended(message.get("code", 1005))
        raise StopConsumer

    async def channelworks_session_ended(self, message: Message) -> None:
        """A layer message: the session that authenticated this socket ended (a logout, a
        flush, a password change elsewhere): close with 4401 (channelworks.session_sockets).
        A message naming no group of this socket is ignored."""
        from channelworks.session_sockets import check_ended

        check_ended(self.scope, message)  # raises SessionEnded: close 4401

    async def channelworks_admin_close(self, message: Message) -> None:
        """A layer message: an operator closed this connection (the admin live view); close
        with its code, 4403 by default, which clients treat as final (channelworks.ops)."""
        from channelworks.ops.control import admin_close

        admin_close(message, self.channel_name)  # raises AdminClosed if it names ours

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        """Close the socket: with the error's code for ``CloseConnection``, else 1011.

        Groups are left and ``disconnect(code)`` runs once, with the code sent. A
        ``CloseConnection`` (bad input included, such as a frame that is not JSON: 1007) then
        ends the consumer quietly, with one INFO line; any other error then leaves the
        application, as in Channels: the server logs it, a test communicator raises it.
        """
        name = type(self).__qualname__
        if self._client_gone and isinstance(exc, OSError):
            # ASGI servers raise an OSError when a frame is sent on a connection that has
            # gone away (a page left while its socket was opening): not a consumer error.
            logger.info("%s: the client went away (%s); ending", name, exc)
            await self._ended(ABNORMAL_CLOSURE)
            raise StopConsumer from exc
        if isinstance(exc, CloseConnection):
            code = exc.code
            logger.info("%s closing with %d: %s", name, code, exc)
        else:
            code = INTERNAL_ERROR
            # One line: the error itself leaves the application below, and the server logs
            # it with its traceback.
            logger.error(
                "%s failed handling message type %r (%s); closing with %d",
                name,
                message.get("type"),
                type(exc).__name__,
                code,
            )
        if isinstance(exc, SlowClient):  # its close frame may wait (close_wait): end first
            await self._ended_logged(code)
        try:
            if message.get("type") != "websocket.disconnect":  # the socket may still be open
                await self._close(code, getattr(exc, "reason", None) or None)
        except Exception:  # the client may be gone already; the cleanup below still runs
            logger.warning("%s could not send its close frame", name, exc_info=True)
        await self._ended_logged(code)
        if isinstance(exc, CloseConnection):
            raise StopConsumer from exc
        raise exc

    def start_connection(self) -> None:
        super().start_connection()
        self._disconnect_called = self._client_gone = False
        self._send_watch = self._inbound = None

    _disconnect_called: bool = False
    #: set when the server refused a frame because the connection is gone (ASGI: an OSError)
    _client_gone: bool = False
    #: the connection's send bookkeeping (the slow-client bound), if that limit is on
    _send_watch: SendWatch | None = None
    #: the connection's inbound buckets, if those limits are on
    _inbound: Inbound | None = None

    async def _over_limit(self, inbound: Inbound, size: int) -> None:
        """A frame over the inbound limits: close 1008, or drop it (counted either way).

        After a drop, the consumer waits until a frame could pass again (at most
        ``DROP_PAUSE`` s) before it takes the next frame: a server with flow control stops
        reading the socket meanwhile, so a flood costs the server about one frame per token
        instead of every frame the client can write.
        """
        if self._guard is None or self._guard.limits.policy == "close":
            stats.rate_closed += 1
            raise RateLimited(reason="rate limit exceeded")
        stats.rate_dropped += 1
        limit_log.event(
            limits_logger,
            "dropped",
            logging.INFO,
            "Dropped {count} WebSocket frame(s) over the inbound limits (stats.rate_dropped="
            "{total})",
            total=stats.rate_dropped,
        )
        if not inbound.dropping:
            inbound.dropping = True
            await self._dropping()
        await asyncio.sleep(min(inbound.wait(monotonic(), size), DROP_PAUSE))

    async def _dropping(self) -> None:
        """Tell the client its frames are being dropped (JSON consumers send an error)."""

    async def _to_client(self, message: Message) -> None:
        watch = self._send_watch
        if watch is not None:
            await self._watched(watch, message)
            return
        try:
            await self.base_send(message)
        except OSError:
            self._client_gone = True
            raise

    async def _watched(self, watch: SendWatch, message: Message) -> None:
        """Send ``message`` under the slow-client bound (limits/outbound.py).

        On a connection found too slow, every send raises ``SlowClient`` (close 1013),
        except the close frame, which waits at most ``close_wait`` for the client and is
        then given up without error. ``_send`` inlines the common case.
        """
        if watch.tripped or watch.too_many():
            if watch.tripped and message["type"] == "websocket.close":
                limits = self._guard.limits if self._guard is not None else Limits()
                try:
                    async with asyncio.timeout(limits.close_wait):
                        await self.base_send(message)
                except (TimeoutError, OSError):
                    pass
                return
            if watch.trip(f"over max_pending_sends={watch.max_pending} sends waiting"):
                cancel_sends([watch])
            raise SlowClient(reason="client too slow")
        watch.started += 1
        try:
            await self.base_send(message)
        except OSError:
            self._client_gone = True
            raise
        except asyncio.CancelledError:
            _given_up(watch)
            raise
        finally:
            watch.finished += 1

    async def _ended_logged(self, code: int) -> None:
        """``_ended``, logging (not raising) what ``disconnect`` raises."""
        try:
            await self._ended(code)
        except Exception:
            logger.exception(
                "%s.disconnect() failed after closing with %d", type(self).__qualname__, code
            )

    async def _ended(self, code: int) -> None:
        """Leave the groups and run the ``disconnect`` hook, once per connection."""
        if self._disconnect_called:
            return
        self._disconnect_called = True
        if self._conn is not None:
            self._conn.closing(code)
        await self.leave_groups()
        await self.call_hook(self.disconnect, code)

    # -- hooks (overridden per flavour) --------------------------------------------------------

    def connect(self) -> Any:
        raise NotImplementedError

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> Any:
        raise NotImplementedError

    def disconnect(self, code: int) -> Any:
        raise NotImplementedError

    # -- the protocol, as coroutines -----------------------------------------------------------

    async def _accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> None:
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers is not None:
            message["headers"] = list(headers)
        if "session" in self.scope:  # closed when the session that authenticated it ends
            from channelworks.session_sockets import bind_consumer

            await bind_consumer(self)
        await self._to_client(message)
        if self._conn is not None:
            self._conn.opened()
        if self.presence is not None:  # tracked once accepted (consumers/presence.py)
            await self._track_presence()

    async def _send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        message: Message
        conn = self._conn  # the operators' counters, kept here: this runs once per frame
        if text_data is not None:
            message = {"type": "websocket.send", "text": text_data}
            if conn is not None:
                conn.frames_out += 1
                conn.bytes_out += len(text_data) if text_data.isascii() else utf8_size(text_data)
        elif bytes_data is not None:
            message = {"type": "websocket.send", "bytes": bytes_data}
            if conn is not None:
                conn.frames_out += 1
                conn.bytes_out += len(bytes_data)
        else:
            raise ValueError("send() needs text_data or bytes_data")
        # Inline, not _to_client: this is the hot path. Under the slow-client bound, the
        # common case (not tripped) is inlined from _watched too; the count of sends
        # waiting is checked by the watchdog's sweeps and by _to_client's sends.
        watch = self._send_watch
        if watch is None:
            try:
                await self.base_send(message)
            except OSError:
                self._client_gone = True
                raise
        elif watch.tripped:
            await self._watched(watch, message)
        else:
            watch.started += 1
            try:
                await self.base_send(message)
            except OSError:
                self._client_gone = True
                raise
            except asyncio.CancelledError:
                _given_up(watch)
                raise
            finally:
                watch.finished += 1
        if close:
            await self._close(None if close is True else close)

    async def _close(self, code: int | None = None, reason: str | None = None) -> None:
        message: Message = {"type": "websocket.close", "code": 1000 if code is None else code}
        if reason:
            message["reason"] = reason
        if self._conn is not None:
            self._conn.closing(message["code"])
        await self._to_client(message)


@framework_class()
class JsonCore(WebsocketCore):
    """JSON framing shared by both JSON consumers: one JSON document per frame."""

    @classmethod
    def encode_json(cls, content: Any) -> Any:
        """The text of a frame carrying ``content``; override to change the encoding.

        ``AsyncJsonWebsocketConsumer`` makes this (and ``decode_json``) an ``async``
        classmethod, as Channels does; a subclass may override either with a plain or an
        ``async`` one.
        """
        return json.dumps(content)

    @classmethod
    def decode_json(cls, text_data: str | bytes) -> Any:
        """The content of a frame's text (or bytes); a ``ValueError`` if it is not JSON."""
        return json.loads(text_data)

    def decode_frame(self, text_data: str | None, bytes_data: bytes | None) -> Any:
        """The JSON document of a frame; raises ``InvalidFrame`` (close 1007) if it is not one.

        With an ``async`` ``decode_json`` (as Channels' async consumer has) this returns the
        awaitable; ``_decode_frame`` awaits it.
        """
        data = text_data if text_data is not None else bytes_data
        if data is None:
            raise InvalidFrame(reason="empty frame")
        try:
            return self.decode_json(data)
        except _NOT_JSON as exc:
            raise _invalid_json(exc) from exc

    async def _decode_frame(self, text_data: str | None, bytes_data: bytes | None) -> Any:
        content = self.decode_frame(text_data, bytes_data)
        if inspect.isawaitable(content):
            try:
                return await content
            except _NOT_JSON as exc:
                raise _invalid_json(exc) from exc
        return content

    async def _dropping(self) -> None:
        content = self.rate_limit_error()
        if content is not None:
            await self._send_json(content)

    async def _send_json(self, content: Any, close: bool | int = False) -> None:
        text = self.encode_json(content)
        if inspect.isawaitable(text):  # an async encode_json, as in Channels' async consumer
            text = await text
        await self._send(text_data=text, close=close)


_NOT_DIRECT = object()
_OFFERS = object()


def direct_receive(cls: type[WebsocketCore]) -> object:
    """The ``receive`` function that frames of ``cls``'s consumers may be handed to directly,
    without ``call_hook``: ``cls.receive`` if it is an ``async def`` and ``cls`` does not wrap
    ``call_hook``; ``_OFFERS`` for a sync consumer that does not wrap it (its frames go to
    ``_call_receive``); else a value no method is. Kept per class (the first frame finds
    it)."""
    receive = inspect.getattr_static(cls, "receive", None)
    direct: object = _NOT_DIRECT
    if cls.call_hook is AsyncConsumer.call_hook:
        if inspect.iscoroutinefunction(receive):
            direct = receive
        elif cls.sync_handlers:
            direct = _OFFERS
    cls._direct_receive = direct
    return direct


def _given_up(watch: SendWatch) -> None:
    """A send was cancelled: raise ``SlowClient`` if the watchdog did it (and nobody else
    cancelled the task too); else return and let the cancellation go on."""
    task = current_task()
    if watch.tripped and task is not None and task.uncancel() == 0:
        raise SlowClient(reason="client too slow") from None


SEND_CODES.update({WebsocketCore._send.__code__, WebsocketCore._watched.__code__})

#: what decoding a frame that is not (acceptable) JSON raises; RecursionError: nested too deep
_NOT_JSON = (ValueError, RecursionError)


def _invalid_json(exc: Exception) -> InvalidFrame:
    """Bad input, not a crash: close 1007 with one short line (a deep nesting included)."""
    return InvalidFrame(
        reason="JSON nested too deep" if isinstance(exc, RecursionError) else "invalid JSON"
    )


@framework_class()
class AsyncWebsocketConsumer(WebsocketCore):
    """A WebSocket consumer whose hooks and handlers are ``async def``."""

    accept = WebsocketCore._accept
    send = WebsocketCore._send  # type: ignore[assignment]
    close = WebsocketCore._close

    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass

    async def disconnect(self, code: int) -> None:
        pass


@framework_class()
class WebsocketConsumer(WebsocketCore, SyncConsumer):
    """A WebSocket consumer whose hooks and handlers are plain ``def`` run in worker threads.

    ``accept``, ``send`` and ``close`` called from its own handlers hand the message to the
    event loop and return; the handler's turn ends once the messages are sent (sync_pool.py).
    """

    def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> None:
        call_async(self, WebsocketCore._accept, subprotocol, headers)

    def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        call_async(self, WebsocketCore._send, text_data, bytes_data, close)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        call_async(self, WebsocketCore._close, code, reason)

    def connect(self) -> None:
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass

    def disconnect(self, code: int) -> None:
        pass


@framework_class()
class AsyncJsonWebsocketConsumer(JsonCore, AsyncWebsocketConsumer):
    """An async WebSocket consumer that exchanges JSON: override ``receive_json``."""

    send_json = JsonCore._send_json

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content)

    @classmethod
    async def decode_json(cls, text_data: str | bytes) -> Any:
        return json.loads(text_data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.receive_json(await self._decode_frame(text_data, bytes_data))

    async def receive_json(self, content: Any) -> None:
        pass


@framework_class()
class JsonWebsocketConsumer(JsonCore, WebsocketConsumer):
    """A sync WebSocket consumer that exchanges JSON: override ``receive_json``."""

    def send_json(self, content: Any, close: bool | int = False) -> None:
        call_async(self, JsonCore._send_json, content, close)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.receive_json(self.decode_frame(text_data, bytes_data))

    def receive_json(self, content: Any) -> None:
        pass


__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonCore",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketCore",
]
