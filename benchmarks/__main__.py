"""``python -m benchmarks``: run the figures side by side and print a table with the targets.

Run with ``uv run --group bench python -m benchmarks`` so that Django Channels is installed;
without it, Channels' lines are skipped with a note. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Sequence

from benchmarks.figures import FIGURES
from benchmarks.report import table, targets
from benchmarks.results import CONTENDERS, Results
from benchmarks.serve import UVICORN_SETTINGS
from benchmarks.sizes import QUICK, Sizes, with_overrides


def _names(text: str, allowed: Sequence[str]) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}; got {text!r}")
    return names


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of counts, not {text!r}"
        ) from None


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="raw ASGI vs channelworks vs Django Channels, under uvicorn, side by side",
    )
    parser.add_argument(
        "--only",
        type=lambda text: _names(text, list(FIGURES)),
        default=list(FIGURES),
        help=f"comma-separated figures to run, from {','.join(FIGURES)} (default: all)",
    )
    parser.add_argument(
        "--frameworks",
        type=lambda text: _names(text, CONTENDERS),
        default=list(CONTENDERS),
        help=f"comma-separated contenders, from {','.join(CONTENDERS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke version")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    sizes = parser.add_argument_group("sizes (override the defaults or the --quick ones)")
    sizes.add_argument("--echo-connections", type=int)
    sizes.add_argument("--echo-round-trips", type=int)
    sizes.add_argument("--echo-passes", type=int)
    sizes.add_argument("--sync-passes", type=int)
    sizes.add_argument("--fanout-clients", type=int)
    sizes.add_argument("--fanout-messages", type=int, help="per round, at most 100")
    sizes.add_argument("--fanout-rounds", type=int, help="rounds per pass")
    sizes.add_argument("--fanout-passes", type=int)
    sizes.add_argument("--group-sizes", type=_sizes, help="like 10,100,1000")
    sizes.add_argument("--group-repeats", type=int)
    sizes.add_argument("--p2p-messages", type=int)
    sizes.add_argument("--memory-connections", type=int)
    sizes.add_argument("--memory-warmup", type=int)
    sizes.add_argument("--crowd-connections", type=int, help="idle connections in one room")
    sizes.add_argument("--storm-clients", type=int, help="clients of the reconnect storm")
    sizes.add_argument("--limits-passes", type=int, help="echo passes, limits on and off")
    sizes.add_argument("--flood-round-trips", type=int, help="the quiet client's, per phase")
    sizes.add_argument("--flood-interval", type=float, help="seconds between them")
    sizes.add_argument("--redis-p2p-seconds", type=float, help="sending time per pass")
    sizes.add_argument("--redis-p2p-tasks", type=int, help="sender tasks of the second mode")
    sizes.add_argument("--redis-p2p-passes", type=int)
    sizes.add_argument("--redis-group-members", type=int)
    sizes.add_argument("--redis-group-processes", type=int, help="receiving processes")
    sizes.add_argument("--redis-group-repeats", type=int)
    sizes.add_argument("--redis-fanout-passes", type=int)
    args = parser.parse_args(argv)
    overrides = {
        name: getattr(args, name)
        for name in vars(args)
        if name not in {"only", "frameworks", "quick", "json"}
    }
    try:
        args.sizes = with_overrides(QUICK if args.quick else Sizes(), overrides)
        args.sizes.check()
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def channels_installed() -> bool:
    return importlib.util.find_spec("channels") is not None


def say(text: str) -> None:
    print(text, flush=True)


def header() -> None:
    say("channelworks benchmarks: raw ASGI vs channelworks vs Django Channels")
    say(
        f"python {platform.python_version()} on {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs; uvicorn {_version('uvicorn')}, websockets "
        f"{_version('websockets')}, channelworks {_version('channelworks')}, channels "
        f"{_version('channels')}, django {_version('django')}"
    )
    settings = ", ".join(f"{k}={v}" for k, v in UVICORN_SETTINGS.items())
    say(f"uvicorn (one process per contender, 127.0.0.1): {settings}")
    say("client: a separate process using websockets' asyncio client, compression off")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    header()
    contenders: list[str] = args.frameworks
    results = Results()
    if "channels" in contenders and not channels_installed():
        note = (
            "NOTE: Django Channels is not installed, so its lines are skipped; it is in the "
            "'bench' dependency group: uv run --group bench python -m benchmarks"
        )
        say(note)
        results.notes.append(note)
        contenders = [c for c in contenders if c != "channels"]
    started = time.monotonic()
    for name in args.only:
        FIGURES[name](contenders, args.sizes, results, say)
    say(f"\nResults ({'quick' if args.quick else 'full'} run, {time.monotonic() - started:.0f} s)")
    say(table(results))
    say(targets(results))
    for note in results.notes:
        say(note)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results.to_json(), out, indent=2)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
