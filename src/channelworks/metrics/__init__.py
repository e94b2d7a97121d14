"""Prometheus metrics of channelworks (docs/operations.md): what the process's connections,
handlers, sync pool, limits and channel layers did, served at ``/metrics``."""

from channelworks.metrics.endpoint import Access, MetricsApp, metrics_view, render
from channelworks.metrics.exporter import Exporter

__all__ = ["Access", "Exporter", "MetricsApp", "metrics_view", "render"]
