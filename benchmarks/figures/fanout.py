"""Figure 2: chat-room fan-out through uvicorn: one sender, every client of the room receives."""

from __future__ import annotations

from collections.abc import Sequence

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


def run_fanout(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    shape = (
        f"{sizes.fanout_clients} clients, {sizes.fanout_rounds} rounds x "
        f"{sizes.fanout_messages} messages per pass"
    )
    say(f"\n== Chat-room fan-out: {shape}, passes interleaved ==")
    rows = throughput_rows(results, "fanout", "fan-out to one room", "deliveries/s")

    def one_pass(contender: str, server: Server) -> Outcome:
        return run_client(
            "fanout",
            server,
            "/room",
            sizes.client_time_limit,
            connections=sizes.fanout_clients,
            operations=sizes.fanout_messages,
            rounds=sizes.fanout_rounds,
            warmup=sizes.fanout_warmup,
        )

    with side_by_side(contenders, rows, say) as servers:
        for contender, outcomes in interleaved(
            servers, sizes.fanout_passes, one_pass, rows, say
        ).items():
            record_throughput(rows, contender, outcomes, say)
