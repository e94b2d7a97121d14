"""The server launcher: ``python -m benchmarks.serve APP PORT`` runs uvicorn on 127.0.0.1.

Every contender gets the same uvicorn settings (``UVICORN_SETTINGS``): the asyncio loop, h11
and the websockets sans-I/O protocol, which is what ``auto`` picks here (uvloop and httptools
are not installed), lifespan off, log level warning. The open-file limit is raised first so
that a thousand sockets fit. ``--profile PATH`` runs the server under cProfile (for looking
into a figure by hand, never during a benchmark run).
"""

from __future__ import annotations

import argparse
import cProfile
from typing import Any

import uvicorn

from benchmarks.limits import raise_open_file_limit

UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "asyncio",
    "http": "h11",
    "ws": "websockets-sansio",
    "lifespan": "off",
    "log_level": "warning",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument(
        "app", help="import path of the ASGI app, like benchmarks.apps.raw:application"
    )
    parser.add_argument("port", type=int)
    parser.add_argument("--profile", metavar="PATH", help="write cProfile stats here on exit")
    args = parser.parse_args(argv)
    raise_open_file_limit()
    if not args.profile:
        uvicorn.run(args.app, host="127.0.0.1", port=args.port, **UVICORN_SETTINGS)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(args.app, host="127.0.0.1", port=args.port, **UVICORN_SETTINGS)
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
