"""Figure 12: ten thousand idle connections in one room of one server process.

A fresh server per contender serves its app; the client (``clients/crowd.py``) opens the
connections on ``/room`` (each joins the room: raw's set of sockets, a group for the
frameworks), and reports the server's memory growth per connection and the time one message
takes to reach all of them. Both frameworks keep their default limits, whose process cap is
10,000 connections.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.figures.common import APPS, Say, attempt
from benchmarks.processes import run_client
from benchmarks.results import Kind, Results
from benchmarks.server import running_server
from benchmarks.sizes import Sizes


def run_crowd(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    count = sizes.crowd_connections
    say(f"\n== {count:,} idle connections in one room, then one message to all ==")
    rss = results.row("crowd_rss", f"{count:,} in a room: memory/conn, RSS", "KiB", Kind.BYTES)
    delivery = results.row(
        "crowd_delivery", f"{count:,} in a room: one message to all", "ms", Kind.SECONDS
    )
    for contender in contenders:

        def measure(contender: str = contender) -> None:
            with running_server(APPS[contender]) as server:
                outcome = run_client(
                    "crowd",
                    server,
                    "/room",
                    sizes.client_time_limit,
                    connections=count,
                    warmup=sizes.memory_warmup,
                    settle=sizes.memory_settle,
                )
            rss.values[contender] = outcome["rss_per_connection"]
            delivery.values[contender] = outcome["delivery_s"]
            say(
                f"  {contender:<12} RSS {outcome['rss_before'] / 2**20:.1f} -> "
                f"{outcome['rss_after'] / 2**20:.1f} MiB: "
                f"{outcome['rss_per_connection'] / 1024:.2f} KiB/conn; one message to all in "
                f"{outcome['delivery_s'] * 1e3:.0f} ms"
            )

        attempt(measure, [rss, delivery], contender, say)
