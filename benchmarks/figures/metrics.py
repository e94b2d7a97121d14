"""Figure 11: what observing connections for operators costs (channelworks only).

Figure 1's echo against one server, passes alternating between ``/echo`` (observed, the
default: per-frame counters, handler timings, a Connection record; what ``/metrics``, the
live view and the connection logs read) and ``/echo-unobserved`` (the same consumer with
``observed=False``: none of it). Best pass of each, and the server CPU per round trip.
Target: observed at least 0.95x unobserved.

On a shared machine the server figures are noisy; the second part is not: the same echo
consumer driven in this process by a minimal ASGI server (a queue), observed and not in
alternating passes, CPU time per message (best pass). Its difference is what observing adds
to each message, whatever the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.figures.common import (
    Outcome,
    Say,
    attempt,
    record_throughput,
    side_by_side,
    throughput_rows,
)
from benchmarks.processes import run_client
from benchmarks.results import Kind, Results, Row
from benchmarks.server import Server
from benchmarks.sizes import Sizes

OURS = "channelworks"
PATHS = {"on": "/echo", "off": "/echo-unobserved"}


def run_metrics(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    say("\n== Operations: echo observed (metrics, live view, logs) vs unobserved (one server) ==")
    if OURS not in contenders:
        say("  (channelworks only: skipped)")
        return
    on_rows = throughput_rows(results, "metrics_echo_on", "echo, observed", "round trips/s")
    off_rows = throughput_rows(results, "metrics_echo_off", "echo, unobserved", "round trips/s")
    inproc = {
        observed: results.row(
            f"metrics_inproc_{'on' if observed else 'off'}",
            f"echo in process, {'observed' if observed else 'unobserved'}: CPU",
            "µs/op",
            Kind.SECONDS,
        )
        for observed in (True, False)
    }
    attempt(lambda: _in_process(sizes, inproc, say), list(inproc.values()), OURS, say)
    with side_by_side([OURS], [*on_rows, *off_rows], say) as servers:
        server = servers.get(OURS)
        if server is not None:
            attempt(
                lambda: _cost(server, sizes, on_rows, off_rows, say),
                [*on_rows, *off_rows],
                OURS,
                say,
            )


def _cost(
    server: Server, sizes: Sizes, on_rows: tuple[Row, Row], off_rows: tuple[Row, Row], say: Say
) -> None:
    outcomes: dict[str, list[Outcome]] = {path: [] for path in PATHS.values()}
    for _ in range(sizes.echo_passes):
        for path, found in outcomes.items():
            found.append(
                run_client(
                    "echo",
                    server,
                    path,
                    sizes.client_time_limit,
                    connections=sizes.echo_connections,
                    operations=sizes.echo_round_trips,
                    warmup=sizes.echo_warmup,
                )
            )
    say("  observed:")
    record_throughput(on_rows, OURS, outcomes[PATHS["on"]], say)
    say("  unobserved:")
    record_throughput(off_rows, OURS, outcomes[PATHS["off"]], say)


def _in_process(sizes: Sizes, rows: dict[bool, Row], say: Say) -> None:
    from channelworks.consumers import AsyncWebsocketConsumer
    from channelworks.layers import channel_layers
    from channelworks.limits import Limits

    class Echo(AsyncWebsocketConsumer):
        limits = Limits.off()

        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await self.send(text_data=text_data)

    channel_layers.configure({})  # no layer: the message path only
    messages = max(sizes.echo_connections * sizes.echo_round_trips * 5, 1000)
    found: dict[bool, list[float]] = {True: [], False: []}
    for observed in (True, False):  # untimed: first-use costs (imports, the pool) go here
        asyncio.run(_drive(Echo.as_asgi(observed=observed), 1000))
    for _ in range(sizes.echo_passes):
        for observed in (True, False):
            app = Echo.as_asgi(observed=observed)
            found[observed].append(asyncio.run(_drive(app, messages)))
    for observed, row in rows.items():
        row.values[OURS] = min(found[observed])
        passes = ", ".join(f"{value * 1e6:.2f}" for value in found[observed])
        say(f"  in process, {'observed' if observed else 'unobserved'}: {passes} µs/message")
    extra = (min(found[True]) - min(found[False])) * 1e6
    say(f"  observing adds {extra:.2f} µs of CPU per echoed message (best passes)")


async def _drive(app: Any, messages: int) -> float:
    """CPU seconds per message of ``app`` echoing ``messages`` text frames."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    queue.put_nowait({"type": "websocket.connect"})
    sent = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        if message["type"] == "websocket.accept":
            queue.put_nowait({"type": "websocket.receive", "text": "hello, world"})
        elif message["type"] == "websocket.send":
            sent += 1
            if sent < messages:
                queue.put_nowait({"type": "websocket.receive", "text": message["text"]})
            else:
                queue.put_nowait({"type": "websocket.disconnect", "code": 1000})

    scope = {
        "type": "websocket",
        "path": "/echo",
        "headers": [],
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "subprotocols": [],
    }
    started = time.process_time()
    await app(scope, queue.get, send)
    if sent != messages:
        raise RuntimeError(f"the echo ended after {sent} of {messages} messages")
    return (time.process_time() - started) / messages
