"""One topic of a client ``Socket``: join, leave, push with replies, events, presence.

The topic keeps what a rejoin needs (its params and the last position it got) and rejoins
after every reconnect until ``leave()``. Events reach callbacks (``on``) and the async
iterator (``events()``) in the order the server sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from channelworks.client.errors import Disconnected, JoinError, PushError, PushTimeout
from channelworks.topics import frames as f
from channelworks.topics.frames import Frame
from channelworks.topics.presence import PresenceState, sync_diff, sync_state

if TYPE_CHECKING:
    from channelworks.client.socket import Socket

logger = logging.getLogger("channelworks.client")

Callback = Callable[[dict[str, Any]], Any]


class Topic:
    """Made by ``socket.topic(name, params)``. ``state`` is ``"closed"``, ``"joining"``,
    ``"joined"``, ``"errored"`` (rejoining after a server error or a lost connection) or
    ``"left"``."""

    def __init__(self, socket: Socket, name: str, params: dict[str, Any] | None = None) -> None:
        self.socket = socket
        self.name = name
        self.params = dict(params or {})
        self.state = "closed"
        self.join_ref: str | None = None
        #: the last position received, ``(offset, epoch)``: the ``since`` of the next join
        self.position: tuple[int, str] | None = None
        #: whether the last join recovered every missed message (``None``: no history)
        self.recovered: bool | None = None
        #: the reply response of the last join (the topic's own, ``response.response``)
        self.join_response: dict[str, Any] = {}
        #: why the topic stopped (a refused rejoin, a ``close`` from the server)
        self.close_reason: str | None = None
        #: who is here: key -> metas (docs/protocol.md "Presence")
        self.presence: PresenceState = {}
        self._presence_synced = False
        self._pending_diffs: list[dict[str, Any]] = []
        self._callbacks: dict[str, list[Callback]] = {}
        self._queues: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = []
        self._joined = asyncio.Event()
        self._wanted = False  # joined by the application and not left: rejoin on reconnect
        self._retries = 0  # joins that timed out in a row (the backoff of the next retry)

    # -- the application's API -------------------------------------------------------------

    async def join(self, timeout: float | None = None) -> dict[str, Any]:
        """Join (with the last position, to resume); -> the topic's join response.
        Raises ``JoinError`` if refused; ``Disconnected`` (not connected now) or
        ``PushTimeout`` (no answer): the topic then joins by itself on the next connection
        (``wait_joined()``), until ``leave()``."""
        _require_portable({"params": self.params})
        self._wanted = True
        try:
            return await self._join(timeout)
        except JoinError:
            self._wanted = False
            raise

    async def leave(self, timeout: float | None = None) -> None:
        """Leave the topic; it is not rejoined after a reconnect. A join on its way is left
        too (the server handles the leave after it; the waiting ``join()`` raises
        ``JoinError("left")``)."""
        self._wanted = False
        # "errored" too: a join that timed out may still be done by the server (a leave of
        # a join the server already dropped is answered ok and does nothing)
        join_ref, was_on = self.join_ref, self.state in ("joined", "joining", "errored")
        self._set_state("left")
        self.join_ref = None  # frames of that join are dropped from now on
        if was_on and join_ref is not None and self.socket.connected:
            with contextlib.suppress(Disconnected, TimeoutError):
                await self.socket.request(self.name, f.LEAVE, {}, join_ref, timeout)

    async def push(
        self, event: str, payload: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Push ``event``; -> the ok reply's response. ``PushError`` on an error reply,
        ``PushTimeout`` when none came within ``timeout`` (the socket's default). A push
        made while the topic is not joined waits for the join, within the same timeout."""
        if f.is_reserved(event):
            raise ValueError(f"event {event!r} is reserved by the protocol")
        payload = dict(payload or {})
        _require_portable(payload)
        limit = self.socket.push_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        if not self._joined.is_set():
            try:
                async with asyncio.timeout(limit):
                    await self._joined.wait()
            except TimeoutError:
                raise PushTimeout(f"{event!r}: {self.name!r} not joined within {limit} s") from None
        reply = await self.socket.request(
            self.name, event, payload, self.join_ref, max(0.0, deadline - loop.time())
        )
        if reply.get("status") != "ok":
            raise PushError(event, _response(reply))
        return _response(reply)

    def on(self, event: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(payload)`` for each ``event`` (``"*"``: every event, called with
        ``{"event", "payload"}``); it may be a coroutine function. -> a function that removes
        it. Protocol events are delivered too: ``presence_state``/``presence_diff`` after
        ``presence`` was updated, ``close`` and ``error``."""
        self._callbacks.setdefault(event, []).append(callback)
        return lambda: self._callbacks.get(event, []).remove(callback)

    async def events(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(event, payload)`` for each event from now on, until the iteration is closed."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)

    async def wait_joined(self, timeout: float | None = None) -> None:
        """Wait until the topic is joined (again, after a reconnect)."""
        async with asyncio.timeout(timeout):
            await self._joined.wait()

    # -- driven by the socket --------------------------------------------------------------

    async def _join(self, timeout: float | None = None) -> dict[str, Any]:
        self._set_state("joining")
        payload: dict[str, Any] = {"params": self.params}
        if self.position is not None:
            payload["since"] = list(self.position)
        self._presence_synced, self._pending_diffs = False, []
        ref = self.socket.make_ref()
        self.join_ref = ref
        try:
            reply = await self.socket.request(self.name, f.JOIN, payload, ref, timeout, ref=ref)
        except (Disconnected, TimeoutError) as exc:
            if self.state == "left":
                raise JoinError(self.name, "left") from exc
            self._set_state("errored")  # joined again on the next connection, if still wanted
            if isinstance(exc, TimeoutError) and self.socket.connected:
                # The connection is up, so no reconnect will rejoin: retry after a backoff
                # (the late join, if the server finishes it, is replaced by the retry).
                self._retries += 1
                self.socket.rejoin_later(self, self._retries)
            raise
        if self.state == "left":  # left while the join was on its way (and the leave sent)
            raise JoinError(self.name, "left")
        response = _response(reply)
        if reply.get("status") != "ok":
            reason = str(response.get("reason", "unknown"))
            self.close_reason = reason
            self._set_state("closed")
            raise JoinError(self.name, reason)
        self.recovered = response.get("recovered")
        position = response.get("position")
        # With missed messages on their way, the position moves as each arrives: a
        # connection lost among them must resume from the last one received.
        fresh = self.position is None or self.recovered is False or not response.get("missed")
        if isinstance(position, list) and len(position) == 2 and fresh:
            self.position = (position[0], position[1])
        app = response.get("response")
        self.join_response = app if isinstance(app, dict) else {}
        self._retries = 0
        self._set_state("joined")
        return self.join_response

    async def _rejoin(self) -> None:
        """After a reconnect or an ``error``: join again if the application wants it and the
        topic is not joined (or being joined) on this connection."""
        if not self._wanted or self.state != "errored":
            return
        try:
            await self._join()
        except JoinError as exc:
            self._wanted = False
            await self._deliver(f.CLOSE, {"reason": exc.reason})
        except (Disconnected, TimeoutError):
            self._set_state("errored")  # the next connection rejoins

    def _disconnected(self) -> None:
        if self.state in ("joined", "joining"):
            self._set_state("errored")

    async def _receive(self, frame: Frame) -> None:
        if frame.join_ref != self.join_ref:
            return  # a frame of an earlier join of this topic, still in flight
        event, payload = frame.event, frame.payload
        if frame.position is not None:
            last = self.position
            if last is not None and last[1] == frame.position[1] and frame.position[0] <= last[0]:
                return  # at or before what this topic has: a replay, never delivered twice
            self.position = frame.position
        if event == f.PRESENCE_STATE:
            self.presence = sync_state(payload)
            self._presence_synced = True
            for diff in self._pending_diffs:
                self.presence = sync_diff(self.presence, diff)
            self._pending_diffs = []
        elif event == f.PRESENCE_DIFF:
            if not self._presence_synced:
                self._pending_diffs.append(payload)
                return
            self.presence = sync_diff(self.presence, payload)
        elif event == f.CLOSE:
            self._wanted = False
            self.close_reason = str(payload.get("reason"))
            self._set_state("closed")
        elif event == f.ERROR:
            self._set_state("errored")
            self.socket.rejoin_later(self)
        await self._deliver(event, payload)

    async def _deliver(self, event: str, payload: dict[str, Any]) -> None:
        for queue in self._queues:
            queue.put_nowait((event, payload))
        calls = [(c, payload) for c in self._callbacks.get(event, ())]
        calls += [(c, {"event": event, "payload": payload}) for c in self._callbacks.get("*", ())]
        for callback, arg in calls:
            try:
                result = callback(arg)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("callback for %r on %r failed", event, self.name)

    def _set_state(self, state: str) -> None:
        self.state = state
        if state == "joined":
            self._joined.set()
        else:
            self._joined.clear()


def _require_portable(payload: dict[str, Any]) -> None:
    """``ValueError`` for what the server would close the whole socket for (4400): the
    call fails alone instead (docs/protocol.md, frames)."""
    problem = f.unportable(payload)
    if problem is not None:
        raise ValueError(f"payload {problem}: the server would close the socket (4400)")


def _response(reply: dict[str, Any]) -> dict[str, Any]:
    response = reply.get("response")
    return response if isinstance(response, dict) else {}


__all__ = ["Topic"]
