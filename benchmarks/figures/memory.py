"""Figure 4: server memory per idle WebSocket connection (echo apps, layer configured)."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.figures.common import APPS, Say, attempt
from benchmarks.processes import run_client
from benchmarks.results import Kind, Results
from benchmarks.server import running_server
from benchmarks.sizes import Sizes


def run_memory(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    count = sizes.memory_connections
    say(f"\n== Server memory per idle connection: {count} connections ==")
    rss = results.row("memory_rss", "memory per idle conn, RSS", "KiB", Kind.BYTES)
    pss = results.row("memory_pss", "memory per idle conn, PSS", "KiB", Kind.BYTES)
    for contender in contenders:

        def measure(contender: str = contender) -> None:
            with running_server(APPS[contender]) as server:
                outcome = run_client(
                    "idle",
                    server,
                    "/echo",
                    sizes.client_time_limit,
                    connections=count,
                    warmup=sizes.memory_warmup,
                    settle=sizes.memory_settle,
                )
            rss.values[contender] = outcome["rss_per_connection"]
            pss.values[contender] = outcome["pss_per_connection"]
            say(
                f"  {contender:<12} RSS {outcome['rss_before'] / 2**20:.1f} -> "
                f"{outcome['rss_after'] / 2**20:.1f} MiB: "
                f"{outcome['rss_per_connection'] / 1024:.2f} KiB/conn; PSS "
                f"{outcome['pss_per_connection'] / 1024:.2f} KiB/conn"
            )

        attempt(measure, [rss, pss], contender, say)
