"""``channelworks demo``: set up the demo site's data and serve it with uvicorn.

Django is imported only when the command runs, so ``channelworks --help`` stays quick. The
configuration goes to the server through environment variables (see ``settings.py``): with
``--workers N`` uvicorn starts N processes that each import the application by name.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

APPLICATION = "channelworks.demo.asgi:application"
SETTINGS = "channelworks.demo.settings"
#: the largest WebSocket frame the server takes; a larger one closes that socket with 1009
WS_MAX_SIZE = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=".channelworks-demo",
        metavar="DIR",
        help="folder of the SQLite database, uploads and secret key (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port to serve on; 0 picks a free one (%(default)s)"
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="use the Redis channel layer at URL (redis://127.0.0.1:6379/0) instead of memory",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="server processes (more than one needs --redis, so they see each other's messages)",
    )


def run(args: argparse.Namespace) -> int:
    problem = check(args)
    if problem:
        print(f"channelworks demo: {problem}", file=sys.stderr)
        return 2
    data = Path(args.data).resolve()
    try:
        prepare(data, args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130

    from channelworks.demo.serve import serve

    return serve(APPLICATION, args.host, args.port, workers=args.workers, ws_max_size=WS_MAX_SIZE)


def prepare(data: Path, args: argparse.Namespace) -> None:
    """Configure Django for ``data``, migrate, seed, and say what is being served."""
    configure(data, args.redis, args.host)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)

    from channelworks.demo.seed import DEMO_PASSWORD, USERS, seed

    seed()
    print(f"Data: {data}")
    print(f"Users (password {DEMO_PASSWORD!r}): " + ", ".join(user.username for user in USERS))
    if args.redis:
        print(f"Channel layer: Redis at {args.redis}, {args.workers} server process(es)")
    else:
        print("Channel layer: in memory (one process)")


def check(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments or the machine, said plainly; ``None`` if nothing."""
    if importlib.util.find_spec("PIL") is None:
        return "the demo needs Pillow: pip install 'channelworks[demo]'"
    if args.workers < 1:
        return "--workers must be at least 1"
    if args.workers > 1 and not args.redis:
        return (
            "--workers needs --redis: with the in-memory layer each process would have its "
            "own rooms and nobody would see the others' messages"
        )
    if args.redis:
        if importlib.util.find_spec("redis") is None:
            return "--redis needs the redis client: pip install 'channelworks[redis]'"
        parts = urlsplit(args.redis)
        if parts.scheme not in ("redis", "rediss"):
            return f"--redis takes a redis:// URL, not {args.redis!r}"
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2).close()
        except OSError as exc:
            return f"cannot reach Redis at {args.redis}: {exc.strerror or exc}"
        return probe_redis(args.redis)
    return None


#: seconds the Redis layer gets to carry one message at start
PROBE_TIMEOUT = 3.0


def probe_redis(url: str) -> str | None:
    """Send one message through the Redis channel layer at ``url`` and receive it: what is
    wrong if that fails (a port that takes connections is not yet a Redis that answers)."""
    import asyncio

    from channelworks.layers.redis import RedisChannelLayer

    timeout = PROBE_TIMEOUT

    async def round_trip(layer: RedisChannelLayer) -> None:
        channel = await layer.new_channel("demo-check.")
        await layer.send(channel, {"type": "demo.check"})
        await layer.receive(channel)

    async def check() -> str | None:
        layer = RedisChannelLayer(hosts=[url], prefix="channelworks-demo")
        try:
            await asyncio.wait_for(round_trip(layer), timeout)
        except TimeoutError:
            return f"Redis at {url} did not answer within {timeout:g} s (is it paused or busy?)"
        except Exception as exc:
            return f"the channel layer cannot use Redis at {url}: {type(exc).__name__}: {exc}"
        finally:
            await asyncio.wait_for(layer.close(), timeout)
        return None

    return asyncio.run(check())


def configure(data: Path, redis_url: str | None, host: str) -> None:
    """Set the environment ``settings.py`` reads, for this process and the servers it starts."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    if host in ("0.0.0.0", "::"):
        hosts = ["*"]  # any address of this machine: the Host header can be any of them
    elif host not in hosts:
        hosts.append(f"[{host}]" if ":" in host else host)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["CHANNELWORKS_DEMO_DATA"] = str(data)
    os.environ["CHANNELWORKS_DEMO_HOSTS"] = ",".join(hosts)
    if redis_url:
        os.environ["CHANNELWORKS_DEMO_REDIS"] = redis_url
    else:
        os.environ.pop("CHANNELWORKS_DEMO_REDIS", None)
