"""Figure 2: chat-room fan-out through uvicorn: one sender, every client of the room receives.

Two rooms: ``/room`` (async consumers) and ``/room-sync``, the room of Channels' tutorial (a
sync consumer whose ``receive`` calls ``async_to_sync(group_send)`` and whose
``chat_message`` is a plain ``def``). Raw serves its one room on both paths.
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


def run_fanout(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    shape = (
        f"{sizes.fanout_clients} clients, {sizes.fanout_rounds} rounds x "
        f"{sizes.fanout_messages} messages per pass"
    )
    say(f"\n== Chat-room fan-out: {shape}, passes interleaved ==")
    rows = throughput_rows(results, "fanout", "fan-out to one room", "deliveries/s")
    sync_rows = throughput_rows(
        results, "fanout_sync", "fan-out, tutorial's sync room", "deliveries/s"
    )

    with side_by_side(contenders, [*rows, *sync_rows], say) as servers:
        for contender, outcomes in interleaved(
            servers, sizes.fanout_passes, fanout_pass("/room", sizes), rows, say
        ).items():
            record_throughput(rows, contender, outcomes, say)
        say("  the tutorial's sync room (raw: its room again):")
        for contender, outcomes in interleaved(
            servers, sizes.fanout_passes, fanout_pass("/room-sync", sizes), sync_rows, say
        ).items():
            record_throughput(sync_rows, contender, outcomes, say)


def fanout_pass(path: str, sizes: Sizes) -> Callable[[str, Server], Outcome]:
    """One pass of the fan-out client against ``path`` (figures 2 and 7)."""

    def one_pass(contender: str, server: Server) -> Outcome:
        return run_client(
            "fanout",
            server,
            path,
            sizes.client_time_limit,
            connections=sizes.fanout_clients,
            operations=sizes.fanout_messages,
            rounds=sizes.fanout_rounds,
            warmup=sizes.fanout_warmup,
        )

    return one_pass
