"""docs/grafana-dashboard.json parses, and every metric it queries is in the exposition."""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.urls import path
from prometheus_client.parser import text_string_to_metric_families

from channelworks.consumers import AsyncWebsocketConsumer
from channelworks.metrics import render
from channelworks.routing import URLRouter
from channelworks.testing import WebsocketCommunicator

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
#: the sample names a family of each type exposes
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


def queried_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "channelworks-ops"
    assert dashboard["title"] == "channelworks"
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    assert len(exprs) >= 15
    return {name for expr in exprs for name in re.findall(r"\b(?:channelworks|process)_\w+", expr)}


def exposed_samples(text: bytes) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text.decode()):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


async def test_every_queried_metric_is_exposed() -> None:
    ws = WebsocketCommunicator(URLRouter([path("e/", Echo.as_asgi(), name="e")]), "/e/")
    await ws.connect()
    await ws.send_to(text_data="x")
    await ws.receive_from()
    await ws.disconnect()
    queried = queried_metrics()
    assert "channelworks_connections_open" in queried
    missing = queried - exposed_samples(render())
    assert not missing, f"the dashboard queries metrics that do not exist: {sorted(missing)}"
