"""Load generation with the topics client: many sockets on one topic, timed joins and pushes.

    python -m channelworks.client.load ws://127.0.0.1:8000/ws/topics/ room:lobby \\
        --sockets 200 --event message --payload '{"body": "hi"}' --pushes 5 --listen 10

opens ``--sockets`` sockets, joins the topic on each (``--params``), then has every socket
push ``--event`` ``--pushes`` times, one round trip after another (the sockets in parallel),
then listens up to ``--listen`` seconds (less with ``--expect N``: until the sockets together
received N events). It prints join and push round-trip percentiles, the
refusals and push failures by reason, and how many server events the sockets received.
Run it from another machine than the server's, or mind that both share the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from channelworks.client.errors import Disconnected, JoinError, PushError, PushTimeout
from channelworks.client.socket import Socket
from channelworks.topics import frames as f

#: protocol events, not counted as received application events
_PROTOCOL = frozenset({f.PRESENCE_STATE, f.PRESENCE_DIFF, f.CLOSE, f.ERROR})


@dataclass
class LoadReport:
    """What a run measured; ``summary()`` as text."""

    sockets: int = 0
    joined: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    join_seconds: list[float] = field(default_factory=list)
    push_seconds: list[float] = field(default_factory=list)
    push_failures: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"sockets {self.sockets}, joined {self.joined}, refused {dict(self.refused)}",
            f"join round trip: {_percentiles(self.join_seconds)}",
            f"push round trip: {_percentiles(self.push_seconds)} "
            f"({len(self.push_seconds)} ok, failures {dict(self.push_failures)})",
            f"received events: {dict(self.received)} in {self.seconds:.2f} s",
        ]
        return "\n".join(lines)


def _percentiles(samples: Sequence[float]) -> str:
    if not samples:
        return "none"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"median {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {ordered[-1] * 1000:.2f} ms"
    )


async def run(
    url: str,
    topic: str,
    *,
    sockets: int = 10,
    params: dict[str, Any] | None = None,
    event: str | None = None,
    payload: dict[str, Any] | None = None,
    pushes: int = 0,
    listen: float = 0.0,
    until_received: int | None = None,
    timeout: float = 10.0,
    connect_concurrency: int = 50,
) -> LoadReport:
    """Run one load (see the module); ``until_received`` ends the listening early once the
    sockets together received that many application events."""
    report = LoadReport(sockets=sockets)
    enough = asyncio.Event()
    opened: list[Socket] = []
    gate = asyncio.Semaphore(connect_concurrency)
    started = time.perf_counter()

    def count(item: dict[str, Any]) -> None:
        if item["event"] not in _PROTOCOL:
            report.received[item["event"]] += 1
            if until_received is not None and sum(report.received.values()) >= until_received:
                enough.set()

    async def join_one() -> Socket | None:
        async with gate:
            socket = Socket(url, push_timeout=timeout, open_timeout=timeout)
            await socket.connect()
            opened.append(socket)
            subscription = socket.topic(topic, params)
            subscription.on("*", count)
            began = time.perf_counter()
            try:
                await subscription.join(timeout)
            except JoinError as exc:
                report.refused[exc.reason] += 1
                return None
            report.join_seconds.append(time.perf_counter() - began)
            report.joined += 1
            return socket

    async def push_from(socket: Socket) -> None:
        subscription = socket.topic(topic)
        for _ in range(pushes):
            began = time.perf_counter()
            try:
                await subscription.push(event or "", payload, timeout)
            except PushError as exc:
                report.push_failures[f"error:{exc.reason}"] += 1
            except PushTimeout:
                report.push_failures["timeout"] += 1
            except Disconnected as exc:
                report.push_failures[f"disconnected:{exc.code}"] += 1
            else:
                report.push_seconds.append(time.perf_counter() - began)

    try:
        members = [s for s in await asyncio.gather(*(join_one() for _ in range(sockets))) if s]
        if event is not None and pushes:
            await asyncio.gather(*(push_from(socket) for socket in members))
        if listen > 0:
            try:
                async with asyncio.timeout(listen):
                    await enough.wait()
            except TimeoutError:
                pass
    finally:
        report.seconds = time.perf_counter() - started
        await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m channelworks.client.load", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("topic")
    parser.add_argument("--sockets", type=int, default=10)
    parser.add_argument("--params", type=json.loads, default=None, help="join params (JSON)")
    parser.add_argument("--event", default=None, help="the event each socket pushes")
    parser.add_argument("--payload", type=json.loads, default=None, help="its payload (JSON)")
    parser.add_argument("--pushes", type=int, default=0, help="pushes per socket")
    parser.add_argument("--listen", type=float, default=0.0, help="seconds to listen after")
    parser.add_argument(
        "--expect", type=int, default=None, help="stop listening once this many events came"
    )
    parser.add_argument("--timeout", type=float, default=10.0)
    options = parser.parse_args(argv)
    report = asyncio.run(
        run(
            options.url,
            options.topic,
            sockets=options.sockets,
            params=options.params,
            event=options.event,
            payload=options.payload,
            pushes=options.pushes,
            listen=options.listen,
            until_received=options.expect,
            timeout=options.timeout,
        )
    )
    print(report.summary())


if __name__ == "__main__":
    main()


__all__ = ["LoadReport", "main", "run"]
