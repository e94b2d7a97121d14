"""The live test case the tests here derive from: our application, URLs and layer set up."""

from __future__ import annotations

from django.test import override_settings

from channelworks.layers import channel_layers, get_channel_layer
from channelworks.testing.live import ChannelsLiveServerTestCase
from tests.live import signals


@override_settings(ROOT_URLCONF="tests.live.urls")
class LiveTestCase(ChannelsLiveServerTestCase):
    """Serves ``tests.live.asgi``; every ``Note`` save is broadcast to the ``notes`` group.

    The suite's autouse fixture empties the channel layer registry around every test, so
    ``setUp`` installs the settings' layer again (a project without such a fixture needs
    nothing: the server and the test read the same ``CHANNEL_LAYERS``). The layer is built
    here, in the test thread, before any socket opens; the server's consumers then find this
    very instance in the process-wide registry.
    """

    application = "tests.live.asgi.application"

    def setUp(self) -> None:
        super().setUp()
        channel_layers.configure(None)  # back to settings.CHANNEL_LAYERS: the in-memory layer
        self.layer = get_channel_layer()
        signals.connect()
        self.addCleanup(signals.disconnect)
