"""Figure 1: WebSocket echo through uvicorn, async consumers and sync ones, each against raw.

Raw has no sync flavour: its ``/echo-sync`` is its echo, so the sync row has the same ceiling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from benchmarks.figures.common import (
    Outcome,
    Say,
    interleaved,
    record_throughput,
    side_by_side,
    throughput_rows,
)
from benchmarks.processes import run_client
from benchmarks.results import Results
from benchmarks.server import Server
from benchmarks.sizes import Sizes


def run_echo(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    shape = f"{sizes.echo_connections} conns x {sizes.echo_round_trips} round trips"
    say(f"\n== WebSocket echo: {shape}, passes interleaved ==")
    async_rows = throughput_rows(results, "echo", "echo, async consumer", "round trips/s")
    sync_rows = throughput_rows(results, "echo_sync", "echo, sync consumer", "round trips/s")

    def drive(path: str) -> Callable[[str, Server], Outcome]:
        def one_pass(contender: str, server: Server) -> Outcome:
            return run_client(
                "echo",
                server,
                path,
                sizes.client_time_limit,
                connections=sizes.echo_connections,
                operations=sizes.echo_round_trips,
                warmup=sizes.echo_warmup,
            )

        return one_pass

    with side_by_side(contenders, [*async_rows, *sync_rows], say) as servers:
        found = interleaved(servers, sizes.echo_passes, drive("/echo"), async_rows, say)
        for contender, outcomes in found.items():
            record_throughput(async_rows, contender, outcomes, say)
        say("  sync consumers (raw: its echo again):")
        found = interleaved(servers, sizes.sync_passes, drive("/echo-sync"), sync_rows, say)
        for contender, outcomes in found.items():
            record_throughput(sync_rows, contender, outcomes, say)
