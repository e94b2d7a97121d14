"""Figure 11: what observing connections for operators costs (channelworks only).

Figure 1's echo against one server, passes alternating between ``/echo`` (observed, the
default: per-frame counters, handler timings, a Connection record; what ``/metrics``, the
live view and the connection logs read) and ``/echo-unobserved`` (the same consumer with
``observed=False``: none of it). Best pass of each, and the server CPU per round trip.
Target: observed at least 0.95x unobserved.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.figures.common import (
    Outcome,
    Say,
    attempt,
    record_throughput,
    side_by_side,
    throughput_rows,
)
from benchmarks.processes import run_client
from benchmarks.results import Results, Row
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
