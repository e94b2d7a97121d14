"""``python -m benchmarks.clients KIND URL --server-pid PID ...``, KIND one of ``echo``,
``fanout``, ``idle``, ``crowd``, ``storm``, ``flood`` and ``latency``.

Prints one line of JSON with the results on stdout and exits 0, or exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from benchmarks.clients.crowd import run_crowd
from benchmarks.clients.echo import run_echo
from benchmarks.clients.fanout import run_fanout
from benchmarks.clients.flood import run_flood, run_latency
from benchmarks.clients.idle import run_idle
from benchmarks.clients.storm import read_keys, run_storm
from benchmarks.limits import raise_open_file_limit


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clients")
    parser.add_argument(
        "kind", choices=["echo", "fanout", "idle", "crowd", "storm", "flood", "latency"]
    )
    parser.add_argument("url")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--operations", type=int, default=200, help="round trips or messages")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="fan-out rounds per pass")
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--seconds", type=float, default=5.0, help="flooding time")
    parser.add_argument("--interval", type=float, default=0.02, help="between round trips")
    parser.add_argument("--keys-file", help="the storm's session keys (JSON list)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "echo":
        return await run_echo(
            args.url,
            args.connections,
            args.operations,
            args.warmup,
            args.passes,
            args.server_pid,
            args.time_limit,
        )
    if args.kind == "fanout":
        return await run_fanout(
            args.url,
            args.connections,
            args.operations,
            args.rounds,
            args.warmup,
            args.passes,
            args.server_pid,
            args.time_limit,
        )
    if args.kind == "crowd":
        return await run_crowd(
            args.url, args.connections, args.warmup, args.settle, args.server_pid, args.time_limit
        )
    if args.kind == "storm":
        return await run_storm(args.url, read_keys(args.keys_file), args.time_limit)
    if args.kind == "flood":
        return await run_flood(args.url, args.seconds)
    if args.kind == "latency":
        return await run_latency(args.url, args.operations, args.interval)
    return await run_idle(
        args.url, args.connections, args.warmup, args.settle, args.server_pid, args.time_limit
    )


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    raise_open_file_limit()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
