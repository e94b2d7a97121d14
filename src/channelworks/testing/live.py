"""Live-server tests: a real uvicorn, in this process, serving HTTP and WebSocket on a free port.

``ChannelsLiveServerTestCase`` is Django's ``TransactionTestCase`` plus a server: browsers,
``websockets`` clients or plain HTTP clients talk to ``live_server_url`` /
``live_server_ws_url`` while the test checks the database and the channel layer.

Rules of this file:
- the listening socket is bound (port 0: the OS picks a free port) and listening *before* the
  server thread starts, so the port is known in ``setUpClass`` and two processes can never
  pick the same one. uvicorn is handed the socket; nothing here ever binds a guessed port;
- the server's event loop runs under ``async_to_sync`` in the server thread. asgiref then runs
  every *thread-sensitive* piece of sync code the application starts (Django's sync views and
  middleware, request signals, ``database_sync_to_async``) in that very thread, which is the
  one whose database connections are overridden: the uvicorn equivalent of the
  ``connections_override`` of Django's ``LiveServerThread``;
- a server that was started is always stopped and its thread joined: in ``tearDownClass``, and
  by a class cleanup if ``setUpClass`` failed half-way (stopping twice is harmless).

Concurrency hazards:
- all thread-sensitive sync code of the server runs in that one thread, one call at a time
  (behind uvicorn in production, Django gives each request a thread of its own). A sync view
  that waits for another request to the same live server waits forever;
- an in-memory SQLite test database exists only inside the connection that created it, so the
  test thread's connection object is shared with the server thread (Django allows this only
  after ``inc_thread_sharing()``). Two threads then use one connection: do not run database
  work in the test thread while a request is in flight;
- code that is *not* thread-sensitive (channelworks' sync consumers, which run in their own
  pool, or ``sync_to_async(thread_sensitive=False)``) opens its own connections. With an
  in-memory SQLite database those reach Django's shared-cache test database: committed rows
  are seen, but concurrent writes may fail with "database table is locked". Use a file-based
  SQLite ``TEST["NAME"]`` or PostgreSQL when such code writes.

Django is imported by this module (the test case derives from ``TransactionTestCase``) but
settings are read only when a test class is set up.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import uvicorn
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import TransactionTestCase, modify_settings
from django.utils.functional import classproperty
from django.utils.module_loading import import_string

from channelworks.types import ASGIApp

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

#: uvicorn settings the live server uses unless ``uvicorn_options`` says otherwise. Logging is
#: left to the test process (``log_config=None``); the grace period bounds ``tearDownClass``
#: when a test leaves a connection open.
DEFAULT_UVICORN_OPTIONS: Mapping[str, Any] = {
    "log_config": None,
    "timeout_graceful_shutdown": 5,
}


class _Server(uvicorn.Server):
    """uvicorn's server, reporting the end of its startup (success or not) to another thread."""

    def __init__(self, config: uvicorn.Config, startup_done: threading.Event) -> None:
        super().__init__(config)
        self.startup_done = startup_done

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_done.set()


class LiveServerThread(threading.Thread):
    """Serves ``application`` with uvicorn on ``sock`` (bound and listening) until ``stop()``.

    Call ``start()`` then ``wait_started()``; ``stop()`` asks the server to exit and joins the
    thread. ``connections_override`` maps database aliases to connection objects this thread
    must use instead of opening its own (the caller makes them shareable first).
    """

    def __init__(
        self,
        application: ASGIApp,
        sock: socket.socket,
        *,
        connections_override: Mapping[str, BaseDatabaseWrapper] | None = None,
        uvicorn_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name="channelworks-live-server", daemon=True)
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.connections_override = dict(connections_override or {})
        self.error: BaseException | None = None
        self._startup_done = threading.Event()
        options = {**DEFAULT_UVICORN_OPTIONS, **(uvicorn_options or {})}
        self.server = _Server(uvicorn.Config(application, **options), self._startup_done)

    def run(self) -> None:
        for alias, connection in self.connections_override.items():
            connections[alias] = connection
        try:
            async_to_sync(self.server.serve)(sockets=[self.sock])
        except (Exception, SystemExit) as exc:  # uvicorn exits with SystemExit on bad startup
            self.error = exc
        finally:
            self._startup_done.set()  # a failure before startup must still wake the waiter
            connections.close_all()

    def wait_started(self, timeout: float) -> None:
        """Block until the server accepts connections; raise ``RuntimeError`` if it cannot."""
        if not self._startup_done.wait(timeout):
            raise RuntimeError(f"The live server did not start within {timeout} seconds")
        if not self.server.started:
            self.join(timeout)
            raise RuntimeError("The live server failed to start") from self.error

    def stop(self, timeout: float) -> None:
        """Ask the server to exit, wait for the thread, and report an error it ended with.

        Open connections are closed by the server (WebSocket: code 1012); tasks still running
        after uvicorn's ``timeout_graceful_shutdown`` are cancelled.
        """
        if self.ident is None:  # never started
            return
        self.server.should_exit = True
        self.join(timeout)
        if self.is_alive():
            raise RuntimeError(f"The live server did not stop within {timeout} seconds")
        if self.error is not None and self.server.started:
            raise RuntimeError("The live server stopped with an error") from self.error


def _shareable_connections() -> dict[str, BaseDatabaseWrapper]:
    """The connections the server thread must share: those holding in-memory SQLite databases."""
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

    return {
        connection.alias: connection
        for connection in connections.all()
        if isinstance(connection, SQLiteWrapper) and connection.is_in_memory_db()
    }


class ChannelsLiveServerTestCase(TransactionTestCase):
    """A ``TransactionTestCase`` with uvicorn serving the project's ASGI application.

    The server starts in ``setUpClass`` (``live_server_url`` and ``live_server_ws_url`` are
    known from then on) and stops in ``tearDownClass``; all tests of the class share it. Set
    class attributes to change what is served:

    - ``application``: an ASGI application or its dotted path; ``None`` (the default) serves
      ``settings.ASGI_APPLICATION``, read when the class is set up, so ``override_settings``
      on the class works;
    - ``serve_static``: serve ``STATIC_URL`` from the staticfiles finders, like Django's
      ``StaticLiveServerTestCase`` (only when ``django.contrib.staticfiles`` is installed);
    - ``host``: the name or address to listen on and to put in the URLs (added to
      ``ALLOWED_HOSTS`` while the class runs); its first address is used;
    - ``uvicorn_options``: extra ``uvicorn.Config`` arguments (``ws_max_size``, ``ws``…).

    Data must be committed to be seen by the server, as with Django's ``LiveServerTestCase``;
    this class is a ``TransactionTestCase`` for that reason. Channel layers come from the
    process-wide registry, so the server's consumers and the test share one layer instance;
    see the module docstring and ``docs/django.md`` for what works across the two threads.
    """

    application: ClassVar[ASGIApp | str | None] = None
    serve_static: ClassVar[bool] = True
    host: ClassVar[str] = "127.0.0.1"
    uvicorn_options: ClassVar[Mapping[str, Any]] = {}
    #: seconds to wait for the server to start, and again for it to stop
    server_timeout: ClassVar[float] = 10.0

    _live_server_thread: ClassVar[LiveServerThread | None] = None

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.enterClassContext(modify_settings(ALLOWED_HOSTS={"append": _url_host(cls.host)}))
        cls._start_live_server()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            cls._stop_live_server()
        finally:
            super().tearDownClass()

    @classmethod
    def get_application(cls) -> ASGIApp:
        """The application to serve: ``application``, else ``ASGI_APPLICATION``, wrapped to
        serve static files when ``serve_static`` applies. Override for anything else."""
        from django.apps import apps

        from channelworks.routing import get_default_application

        configured = cls.application
        if configured is None:
            application = get_default_application()
        elif isinstance(configured, str):
            application = import_string(configured)
        else:
            application = configured
        if cls.serve_static and apps.is_installed("django.contrib.staticfiles"):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            # Django's handler serves STATIC_URL itself and hands every other scope
            # (WebSocket included) to the application it wraps.
            static: ASGIApp = ASGIStaticFilesHandler(application)  # type: ignore[arg-type,assignment]
            return static
        return application

    @classproperty
    def live_server_url(cls: type[ChannelsLiveServerTestCase]) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{_netloc(cls)}"

    @classproperty
    def live_server_ws_url(cls: type[ChannelsLiveServerTestCase]) -> str:
        """``ws://host:port`` of the running server."""
        return f"ws://{_netloc(cls)}"

    @classmethod
    def _start_live_server(cls) -> None:
        application = cls.get_application()
        sock = _listen(cls.host)
        try:
            thread = LiveServerThread(
                application,
                sock,
                connections_override=_shareable_connections(),
                uvicorn_options=cls.uvicorn_options,
            )
        except BaseException:
            sock.close()
            raise
        for connection in thread.connections_override.values():
            connection.inc_thread_sharing()
        cls._live_server_thread = thread
        cls.addClassCleanup(cls._stop_live_server)
        thread.start()
        thread.wait_started(cls.server_timeout)

    @classmethod
    def _stop_live_server(cls) -> None:
        thread = vars(cls).get("_live_server_thread")
        if thread is None:
            return
        cls._live_server_thread = None
        try:
            thread.stop(cls.server_timeout)
        finally:
            thread.sock.close()
            for connection in thread.connections_override.values():
                connection.dec_thread_sharing()


def _listen(host: str) -> socket.socket:
    """A socket bound to a port the OS picks on ``host``, already listening."""
    family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _netloc(cls: type[ChannelsLiveServerTestCase]) -> str:
    # Only the class's own server counts: a subclass not set up yet must not report the
    # address of a parent class that is running.
    thread = vars(cls).get("_live_server_thread")
    if thread is None:
        raise RuntimeError(
            f"{cls.__qualname__} has no live server: it starts in setUpClass and stops in "
            "tearDownClass"
        )
    return f"{_url_host(cls.host)}:{thread.port}"


#: the same class under channelworks' name
ChannelworksLiveServerTestCase = ChannelsLiveServerTestCase

__all__ = [
    "ChannelsLiveServerTestCase",
    "ChannelworksLiveServerTestCase",
    "LiveServerThread",
]
