"""``runworker CHANNEL [CHANNEL...]``: serve the ``channel`` branch of ``ASGI_APPLICATION``.

Everything is checked before the worker starts, and each problem is a ``CommandError`` that
says what to fix: a bad channel name, a missing or broken channel layer, an application that
cannot be imported or has no route for a name. SIGTERM or SIGINT then stops it after the
messages in hand (exit status 0); a second one stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.exceptions import InvalidChannelLayerError, InvalidChannelName
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.registry import get_channel_layer
from channelworks.lifespan import close_channel_layers
from channelworks.routing import get_default_application
from channelworks.types import AnyASGIApp
from channelworks.worker import Worker, require_worker_channel, serve, unrouted_channels


class Command(BaseCommand):
    help = (
        "Runs a worker: the 'channel' branch of ASGI_APPLICATION (a ChannelNameRouter) for "
        "messages sent to the given channel names, until SIGTERM or SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "channels",
            nargs="+",
            metavar="CHANNEL",
            help="Channel names to read, such as thumbnail-generate.",
        )
        parser.add_argument(
            "--layer",
            default=DEFAULT_CHANNEL_LAYER,
            help="Alias in CHANNEL_LAYERS of the layer to read from (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        channels: list[str] = options["channels"]
        alias: str = options["layer"]
        for name in channels:
            try:
                require_worker_channel(name)
            except InvalidChannelName as exc:
                raise CommandError(str(exc)) from exc
        layer = self.get_layer(alias)
        application = self.get_application(channels)
        if isinstance(layer, InMemoryChannelLayer):
            self.stderr.write(
                f"Channel layer {alias!r} is in-memory: this worker only sees messages sent "
                "from inside its own process. Use the Redis or RabbitMQ layer to reach it "
                "from other processes."
            )
        self.configure_logging(options["verbosity"])
        worker = Worker(application, layer, channels)
        asyncio.run(self.run_worker(worker, alias))

    def get_layer(self, alias: str) -> BaseChannelLayer:
        try:
            layer = get_channel_layer(alias)
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if layer is None:
            raise CommandError(
                f"No channel layer {alias!r} is configured: add it to CHANNEL_LAYERS, or "
                "name another with --layer"
            )
        return layer

    def get_application(self, channels: list[str]) -> AnyASGIApp:
        try:
            application = get_default_application()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        missing = unrouted_channels(application, channels)
        if missing:
            raise CommandError(
                f"ASGI_APPLICATION has no route for channel(s) {', '.join(missing)}: map each "
                "in the ChannelNameRouter under the 'channel' key of its ProtocolTypeRouter"
            )
        return application

    async def run_worker(self, worker: Worker, alias: str) -> None:
        """Serve until stopped by a signal, then close the layer (this process is ending)."""

        def ready() -> None:
            self.stdout.write(
                f"Running worker for channel(s) {', '.join(worker.channels)} on channel layer "
                f"{alias!r}. Stop it with SIGTERM or CONTROL-C."
            )
            self.stdout.flush()

        try:
            await serve(worker, on_ready=ready)
        finally:
            # every layer this process built, so others stop sending to it (lifespan.py)
            await close_channel_layers(worker.channel_layer)
        self.stdout.write("Worker stopped.")

    def configure_logging(self, verbosity: int) -> None:
        """Show the worker's log on stderr, unless the project's LOGGING already handles it."""
        worker_logger = logging.getLogger("channelworks.worker")
        if worker_logger.hasHandlers():
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        worker_logger.addHandler(handler)
        worker_logger.setLevel(
            logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
        )
