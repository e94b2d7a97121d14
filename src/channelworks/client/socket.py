"""The topics client's connection: one WebSocket, reconnected with backoff, many topics.

One task (``_run``) owns the connection: it connects, rejoins the topics the application
joined, reads frames and hands them to their topics, and on a close decides by the close
code whether to reconnect (docs/protocol.md "Close codes"). A second task per connection
sends heartbeats and aborts the connection when a reply does not come within the interval.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from channelworks.client.backoff import full_jitter, should_reconnect
from channelworks.client.errors import Disconnected, PushTimeout
from channelworks.client.topic import Topic
from channelworks.topics import frames as f
from channelworks.topics.frames import Codec, Frame, ProtocolError

logger = logging.getLogger("channelworks.client")


class Socket:
    """``async with Socket("ws://host/ws/topics/") as socket:`` then
    ``room = socket.topic("room:lobby"); await room.join()``.

    Options (defaults): ``subprotocol`` (``"channelworks.v1"``; or ``"channelworks.v1.msgpack"``),
    ``heartbeat_interval`` (25 s; ``None``: no heartbeats), ``push_timeout`` (10 s),
    ``reconnect`` (True), ``backoff_base`` (0.5 s) and ``backoff_max`` (10 s) for the
    full-jitter backoff, ``headers`` for the handshake (a cookie, a token), ``open_timeout``
    (10 s).
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocol: str = f.JSON_SUBPROTOCOL,
        heartbeat_interval: float | None = 25.0,
        push_timeout: float = 10.0,
        reconnect: bool = True,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        headers: Iterable[tuple[str, str]] | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.codec = Codec(subprotocol)
        self.heartbeat_interval = heartbeat_interval
        self.push_timeout = push_timeout
        self.reconnect = reconnect
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.headers = list(headers or ())
        self.open_timeout = open_timeout
        self.topics: dict[str, Topic] = {}
        #: ``"connecting"``, ``"open"`` or ``"closed"``
        self.state = "closed"
        #: the close code of the last connection (``None``: lost without a close frame)
        self.close_code: int | None = None
        self.close_reason = ""
        #: connections opened so far (1 after the first)
        self.connections = 0
        self._refs = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._run_task: asyncio.Task[None] | None = None
        self._opened: asyncio.Event = asyncio.Event()
        self._stopped: asyncio.Event = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection (the first attempt's error is raised: a wrong URL or a refused
        handshake), then keep it open in the background."""
        ws = await self._open()
        self._run_task = asyncio.create_task(self._run(ws))

    async def close(self) -> None:
        """Close for good: no reconnect; pending pushes fail with ``Disconnected``."""
        self._closing = True
        ws, task = self._ws, self._run_task
        if ws is not None:
            await ws.close()  # the run task sees the close and ends
        elif task is not None:
            task.cancel()  # waiting out a backoff, or connecting
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        self.state = "closed"
        self._stopped.set()

    async def __aenter__(self) -> Socket:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.state == "open"

    async def wait_open(self, timeout: float | None = None) -> None:
        """Wait until a connection is open (again)."""
        async with asyncio.timeout(timeout):
            await self._opened.wait()

    async def wait_stopped(self, timeout: float | None = None) -> int | None:
        """Wait until the socket stops for good (a stop code, or ``close()``); -> the code."""
        async with asyncio.timeout(timeout):
            await self._stopped.wait()
        return self.close_code

    def topic(self, name: str, params: dict[str, Any] | None = None) -> Topic:
        """The topic ``name`` of this socket (made on first use, with ``params``)."""
        found = self.topics.get(name)
        if found is None:
            found = self.topics[name] = Topic(self, name, params)
        elif params is not None:
            found.params = dict(params)
        return found

    # -- requests --------------------------------------------------------------------------

    def make_ref(self) -> str:
        return str(next(self._refs))

    async def request(
        self,
        topic: str,
        event: str,
        payload: dict[str, Any],
        join_ref: str | None,
        timeout: float | None = None,
        *,
        ref: str | None = None,
    ) -> dict[str, Any]:
        """Send a frame and wait for its reply's payload (``{"status", "response"}``)."""
        ws = self._ws
        if ws is None or self.state != "open":
            raise Disconnected(self.close_code, "not connected")
        ref = ref or self.make_ref()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ref] = future
        try:
            await ws.send(self.codec.encode(Frame(join_ref, ref, topic, event, payload)))
            async with asyncio.timeout(self.push_timeout if timeout is None else timeout):
                return await future
        except TimeoutError:
            raise PushTimeout(f"no reply to {event!r} on {topic!r}") from None
        except ConnectionClosed as exc:
            raise Disconnected(_code(exc), "closed while sending") from exc
        finally:
            self._replies.pop(ref, None)

    async def send_frame(self, frame: Frame) -> None:
        """Send any frame as is (for tests of the server's validation)."""
        if self._ws is None:
            raise Disconnected(self.close_code, "not connected")
        await self._ws.send(self.codec.encode(frame))

    def rejoin_later(self, topic: Topic, attempt: int = 1) -> None:
        """Rejoin ``topic`` after a backoff (the server reported an ``error`` on it, or its
        join timed out; ``attempt`` sizes the backoff)."""
        delay = full_jitter(attempt, self.backoff_base, self.backoff_max)
        self._spawn(self._rejoin_after(topic, delay))

    # -- the connection --------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        self.state = "connecting"
        ws = await connect(
            self.url,
            subprotocols=[self.codec.subprotocol],  # type: ignore[list-item]
            additional_headers=self.headers,
            open_timeout=self.open_timeout,
            close_timeout=2,
            ping_interval=None,  # the protocol's own heartbeats detect a dead peer
            max_size=None,
        )
        self._ws = ws
        self.state = "open"
        self.connections += 1
        self._opened.set()
        return ws

    async def _run(self, ws: ClientConnection | None) -> None:
        attempt = 0
        while True:
            if ws is not None:
                opened = asyncio.get_running_loop().time()
                await self._serve(ws)
                if self._closing or not (self.reconnect and should_reconnect(self.close_code)):
                    break
                stayed = asyncio.get_running_loop().time() - opened > self.backoff_max
                if stayed and self.close_code != f.PROTOCOL_ERROR:
                    attempt = 0  # it stayed open: a fresh start (never after 4400: a bug of
                    # ours that would come back at once, so it slows down to the cap)
            delay = full_jitter(attempt, self.backoff_base, self.backoff_max)
            attempt += 1
            await asyncio.sleep(delay)
            if self._closing:
                break
            try:
                ws = await self._open()
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                ws = None
                self.state = "closed"
                if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
                    logger.warning("%s refused the handshake (%s); retrying", self.url, exc)
        self.state = "closed"
        self._stopped.set()

    async def _serve(self, ws: ClientConnection) -> None:
        """Read frames until the connection closes; then fail what waited on it."""
        heartbeat = self._spawn(self._heartbeat(ws)) if self.heartbeat_interval else None
        for topic in self.topics.values():
            self._spawn(topic._rejoin())
        try:
            async for data in ws:
                try:
                    frame = self.codec.decode_server_frame(
                        data if isinstance(data, str) else None,
                        data if isinstance(data, bytes) else None,
                    )
                except ProtocolError as exc:
                    logger.warning("dropped a malformed frame from the server: %s", exc)
                    continue
                await self._dispatch(frame)
        except ConnectionClosed:
            pass
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            self.close_code = ws.close_code
            self.close_reason = ws.close_reason or ""
            self._ws = None
            self.state = "closed"
            self._opened.clear()
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(Disconnected(self.close_code, self.close_reason))
            for topic in self.topics.values():
                topic._disconnected()

    async def _dispatch(self, frame: Frame) -> None:
        if frame.event == f.REPLY and frame.ref is not None:
            future = self._replies.get(frame.ref)
            if future is not None and not future.done():
                future.set_result(frame.payload)
            return
        topic = self.topics.get(frame.topic)
        if topic is not None:
            await topic._receive(frame)

    async def _heartbeat(self, ws: ClientConnection) -> None:
        interval = self.heartbeat_interval
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            try:
                await self.request(f.SOCKET_TOPIC, f.HEARTBEAT, {}, None, interval)
            except PushTimeout:
                logger.info("no heartbeat reply within %s s: reconnecting", interval)
                ws.transport.abort()  # a half-open connection: no close handshake
                return
            except Disconnected:
                return

    async def _rejoin_after(self, topic: Topic, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.connected:
            await topic._rejoin()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


__all__ = ["Socket"]
