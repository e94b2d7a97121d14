"""``runserver`` for ASGI: ``ASGI_APPLICATION`` (HTTP and WebSocket on one port) on uvicorn.

It is Django's ``runserver`` with the serving part replaced, so it keeps Django's address
parsing (``8001``, ``0.0.0.0:8001``, ``[::1]:8000``, ``-6``), its autoreloader, the system
checks and the migrations warning; ``--noasgi`` runs Django's own WSGI server instead.

Django picks the ``runserver`` of the first app in ``INSTALLED_APPS`` that has one, and
``django.core``'s only when no app has one. ``django.contrib.staticfiles`` has one too, so
``"channelworks"`` must come before it. Static files are served here instead, the same way:
under ``DEBUG`` (or with ``--insecure``), unless ``--nostatic``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import uvicorn
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.runserver import Command as DjangoRunserverCommand
from django.db import connections
from django.utils import autoreload

from channelworks.routing import get_default_application
from channelworks.types import AnyASGIApp

STATICFILES_APP = "django.contrib.staticfiles"

_BIND_ERRORS = {
    errno.EACCES: "this user may not listen on port {port}",
    errno.EADDRINUSE: "port {port} on {addr} is already in use",
    errno.EADDRNOTAVAIL: "this machine has no address {addr} to listen on",
}


class Command(DjangoRunserverCommand):
    help = (
        "Starts a development server for ASGI_APPLICATION (HTTP and WebSocket on one port) "
        "with uvicorn, reloading on code changes; --noasgi runs Django's WSGI server instead."
    )

    # Set by Django's handle() from the addrport argument (the stubs do not declare them).
    addr: str
    port: str
    use_ipv6: bool
    _raw_ipv6: bool

    #: seconds open connections get to finish when the server stops
    shutdown_timeout = 5
    #: connections the listening socket queues before uvicorn accepts them
    backlog = 2048

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noasgi",
            action="store_false",
            dest="use_asgi",
            help="Run Django's own WSGI development server instead (no WebSocket).",
        )
        if apps.is_installed(STATICFILES_APP):
            parser.add_argument(
                "--nostatic",
                action="store_false",
                dest="use_static_handler",
                help="Do not serve static files at STATIC_URL.",
            )
            parser.add_argument(
                "--insecure",
                action="store_true",
                dest="insecure_serving",
                help="Serve static files even with DEBUG = False.",
            )

    # -- what is served -----------------------------------------------------------------------

    def serves_static(self, options: dict[str, Any]) -> bool:
        """Whether static files are served: staticfiles installed, ``DEBUG`` or ``--insecure``,
        and no ``--nostatic``."""
        return (
            apps.is_installed(STATICFILES_APP)
            and options.get("use_static_handler", True)
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    def get_handler(self, *args: Any, **options: Any) -> WSGIHandler:
        """The WSGI application of ``--noasgi``, serving static files like the ASGI one."""
        handler = super().get_handler(*args, **options)
        if self.serves_static(options):
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            return StaticFilesHandler(handler)
        return handler

    def get_asgi_handler(self, **options: Any) -> AnyASGIApp:
        """``ASGI_APPLICATION``, behind Django's static files handler when it applies.

        That handler answers only HTTP requests under ``STATIC_URL`` and passes every other
        scope (WebSocket, lifespan, other paths) to the application unchanged.
        """
        try:
            application = get_default_application()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if self.serves_static(options):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            return ASGIStaticFilesHandler(application)  # type: ignore[arg-type]
        return application

    # -- serving ------------------------------------------------------------------------------

    def inner_run(self, *args: Any, **options: Any) -> None:
        """Serve until stopped; with the autoreloader this runs in a thread of the child."""
        if not options["use_asgi"]:
            super().inner_run(*args, **options)
            return
        # An error the reloader's parent silenced (a broken module) is raised here, in the
        # child, where the reloader can wait for the fix.
        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()  # opened by the migrations check; requests open their own

        application = self.get_asgi_handler(**options)
        try:
            # From here on SIGTERM and CONTROL-C end the process with status 0, also if they
            # come before uvicorn takes them over (it does once it is serving).
            with _sigterm_exits():
                self.serve(application)
        except KeyboardInterrupt:
            if options.get("shutdown_message"):
                self.stdout.write(options["shutdown_message"])
            sys.exit(0)

    def serve(self, application: AnyASGIApp) -> None:
        """Listen, show the banner, and serve ``application`` until uvicorn is told to stop."""
        try:
            sock = self.bind()
        except OSError as exc:
            reason = _BIND_ERRORS.get(exc.errno or 0, "{error}")
            self.stderr.write("Error: " + reason.format(addr=self.addr, port=self.port, error=exc))
            self.stderr.flush()
            os._exit(1)  # sys.exit() would only end the reloader's thread
        with sock:
            self.print_banner(sock.getsockname()[1])
            config = uvicorn.Config(
                application,
                lifespan="auto",
                backlog=self.backlog,
                timeout_graceful_shutdown=self.shutdown_timeout,
            )
            # uvicorn holds SIGTERM and SIGINT back while it shuts down, then raises them again.
            uvicorn.Server(config).run(sockets=[sock])

    def bind(self) -> socket.socket:
        """A listening socket on the address and port asked for (port 0: any free port)."""
        family = socket.AF_INET6 if self.use_ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # A restart by the reloader must not wait for the old socket's TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.addr, int(self.port)))
            # Listening now, so that connections made as soon as the banner shows wait in
            # the backlog until uvicorn accepts them, instead of being refused.
            sock.listen(self.backlog)
        except OSError:
            sock.close()
            raise
        return sock

    def server_url(self, port: int) -> str:
        """The address to show for ``port``, the way a browser would take it."""
        if self._raw_ipv6:
            host = f"[{self.addr}]"
        elif self.addr == "0":
            host = "0.0.0.0"
        else:
            host = self.addr
        return f"http://{host}:{port}/"

    def print_banner(self, port: int) -> None:
        quit_keys = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{datetime.now():%B %d, %Y - %X}\n"
            f"Django version {self.get_version()}, using settings "
            f"{settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI/channelworks development server at {self.server_url(port)}\n"
            f"Quit the server with {quit_keys}."
        )
        if os.environ.get("DJANGO_RUNSERVER_HIDE_WARNING") != "true":
            self.stdout.write(
                self.style.WARNING(
                    "This server is for development only. In production, serve the "
                    "application with an ASGI server such as uvicorn, daphne or hypercorn."
                )
            )
        self.stdout.flush()


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Make SIGTERM end the process with status 0, as it does under Django's reloader.

    uvicorn takes SIGTERM over while serving, shuts down, puts this handler back and raises
    the signal again, which lands here. Only the main thread receives signals; under the
    reloader this runs in another thread and the reloader's own handler applies.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_cleanly(signum: int, frame: object) -> None:
        sys.exit(0)

    previous = signal.signal(signal.SIGTERM, exit_cleanly)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
