"""Serve the demo with uvicorn: one process, or ``workers`` processes sharing one socket.

The socket is bound and listening before the URL is printed, so a browser (or a test) that
connects as soon as it sees the URL waits in the backlog instead of being refused. CONTROL-C
and SIGTERM stop the server gracefully and end the command with status 0.
"""

from __future__ import annotations

import signal
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

#: seconds open connections get to finish when the server stops
SHUTDOWN_TIMEOUT = 5
BACKLOG = 2048


def serve(application: str, host: str, port: int, *, workers: int, ws_max_size: int) -> int:
    try:
        sock = bind(host, port)
    except OSError as exc:
        print(f"channelworks demo: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        application,
        workers=workers,
        lifespan="on",
        ws_max_size=ws_max_size,
        log_level="warning",
        backlog=BACKLOG,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
    )
    # uvicorn holds SIGINT and SIGTERM while it shuts down, then raises them again: both
    # then end up here as KeyboardInterrupt, the quiet way out. The handler is in place before
    # the URL is printed, so a signal sent as soon as the URL is seen is a clean stop too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print(f"Serving on {url(host, sock.getsockname()[1])} (quit with CONTROL-C)", flush=True)
        with sock:
            if workers == 1:
                uvicorn.Server(config).run(sockets=[sock])
            else:
                Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    print("Stopped.", flush=True)
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host`` and ``port`` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A restart must not wait for the previous server's connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.set_inheritable(True)  # --workers: the server processes share it
    except OSError:
        sock.close()
        raise
    return sock


def url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
