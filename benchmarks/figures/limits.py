"""Figure 10: what the per-connection limits cost, and what they protect (channelworks only).

- **Cost**: figure 1's echo against one server, passes alternating between ``/echo`` (the
  default limits, inbound rates out of reach so that every check runs and none acts) and
  ``/echo-off`` (``Limits.off()``). Best pass of each, and the server CPU per round trip.
- **Flood**: a quiet client's median echo round trip (one every ``flood_interval`` s),
  first alone, then while another client process floods at full speed, reconnecting when it
  is closed. Twice: both on ``/echo-limited`` (the default limits: the flooder is closed
  with 1008 after its burst, and reconnects), then both on ``/echo-dropping`` (policy
  "drop": the server reads and drops every frame of the flood).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Sequence

from benchmarks.figures.common import (
    Outcome,
    Say,
    attempt,
    record_throughput,
    side_by_side,
    throughput_rows,
)
from benchmarks.processes import KILL_MARGIN, run_client
from benchmarks.results import Kind, Results, Row
from benchmarks.server import Server
from benchmarks.sizes import Sizes

OURS = "channelworks"
#: the flood figure's policies and the routes that have them
FLOOD_PATHS = {"close": "/echo-limited", "drop": "/echo-dropping"}


def run_limits(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    say("\n== Per-connection limits: echo with limits on vs off (one server), and a flood ==")
    if OURS not in contenders:
        say("  (channelworks only: skipped)")
        return
    on_rows = throughput_rows(results, "limits_echo_on", "echo, default limits", "round trips/s")
    off_rows = throughput_rows(results, "limits_echo_off", "echo, limits off", "round trips/s")
    flood_rows = [
        results.row(f"flood_{policy}_{key}", f"echo median, {title} ({policy})", "ms", Kind.SECONDS)
        for policy in FLOOD_PATHS
        for key, title in (("quiet", "alone"), ("loaded", "one flooding"))
    ]
    with side_by_side([OURS], [*on_rows, *off_rows, *flood_rows], say) as servers:
        server = servers.get(OURS)
        if server is None:
            return
        attempt(
            lambda: _cost(server, sizes, on_rows, off_rows, say), [*on_rows, *off_rows], OURS, say
        )
        for policy, path in FLOOD_PATHS.items():
            rows = [row for row in flood_rows if row.key.startswith(f"flood_{policy}_")]
            attempt(functools.partial(_flood, server, path, sizes, rows, say), rows, OURS, say)


def _cost(
    server: Server,
    sizes: Sizes,
    on_rows: tuple[Row, Row],
    off_rows: tuple[Row, Row],
    say: Say,
) -> None:
    outcomes: dict[str, list[Outcome]] = {"/echo": [], "/echo-off": []}
    for _ in range(sizes.limits_passes):
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
    say("  limits on:")
    record_throughput(on_rows, OURS, outcomes["/echo"], say)
    say("  limits off:")
    record_throughput(off_rows, OURS, outcomes["/echo-off"], say)


def _latency(server: Server, path: str, sizes: Sizes) -> float:
    outcome = run_client(
        "latency",
        server,
        path,
        sizes.client_time_limit,
        operations=sizes.flood_round_trips,
        interval=sizes.flood_interval,
    )
    median: float = outcome["median"]
    return median


def _flood(server: Server, path: str, sizes: Sizes, rows: list[Row], say: Say) -> None:
    alone = _latency(server, path, sizes)
    seconds = sizes.flood_round_trips * sizes.flood_interval * 2 + 2
    flooder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.clients",
            "flood",
            server.url(path),
            "--server-pid",
            str(server.pid),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        ready = flooder.stdout.readline() if flooder.stdout else ""
        if "flooding" not in ready:
            raise RuntimeError(f"the flooder did not start: {ready.strip()!r}")
        flooded = _latency(server, path, sizes)
        out, err = flooder.communicate(timeout=seconds + KILL_MARGIN)
    finally:
        if flooder.poll() is None:
            flooder.kill()
            flooder.wait()
    if flooder.returncode or not out.strip():
        raise RuntimeError(f"the flooder exited {flooder.returncode}: {err.strip()[-1000:]}")
    flood = json.loads(out.strip().splitlines()[-1])
    rows[0].values[OURS], rows[1].values[OURS] = alone, flooded
    say(
        f"  {path}: quiet client's median echo: {alone * 1e3:.3f} ms alone, {flooded * 1e3:.3f} ms "
        f"while flooded ({flooded / alone:.2f}x); the flooder sent {flood['frames']:,} frames "
        f"({flood['rate']:,.0f}/s) over {flood['connections']} connection(s), closes "
        f"{flood['close_codes'] or 'none'}"
    )
