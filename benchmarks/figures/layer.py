"""Figure 3: the in-memory layers in process: ``group_send`` to N members, send+receive."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.figures.common import Say, attempt
from benchmarks.processes import KILL_MARGIN, run_module
from benchmarks.results import Kind, Results, Row
from benchmarks.sizes import Sizes


def run_layer(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    say("\n== In-memory channel layer, in process (no server); receivers drain ==")
    calls: dict[str, Row] = {}
    rounds: dict[str, Row] = {}
    for size in sizes.group_sizes:
        calls[str(size)] = results.row(
            f"group_send_{size}", f"group_send to {size}: call", "ms", Kind.SECONDS
        )
        rounds[str(size)] = results.row(
            f"group_send_round_{size}", f"group_send to {size}: all got it", "ms", Kind.SECONDS
        )
    p2p = results.row("send_receive", "send+receive, one channel", "messages/s", Kind.RATE)
    every_row = [*calls.values(), *rounds.values(), p2p]
    for framework in [c for c in contenders if c != "raw"]:

        def measure(framework: str = framework) -> None:
            outcome = run_module(
                [
                    "benchmarks.layer_bench",
                    framework,
                    "--sizes",
                    ",".join(str(size) for size in sizes.group_sizes),
                    "--repeats",
                    str(sizes.group_repeats),
                    "--budget",
                    str(sizes.group_budget),
                    "--messages",
                    str(sizes.p2p_messages),
                    "--passes",
                    str(sizes.p2p_passes),
                ],
                sizes.client_time_limit + KILL_MARGIN,
            )
            for size, timing in outcome["group_send"].items():
                call, whole = timing["call_median_s"], timing["round_median_s"]
                calls[size].values[framework] = call
                rounds[size].values[framework] = whole
                say(
                    f"  {framework:<12} group_send to {size:>5}: call {call * 1e3:8.3f} ms, "
                    f"all received {whole * 1e3:8.3f} ms (median of {timing['repeats']})"
                )
            rate = outcome["send_receive"]["rate"]
            p2p.values[framework] = rate
            say(f"  {framework:<12} send+receive: {rate:,.0f} messages/s")

        attempt(measure, every_row, framework, say)
