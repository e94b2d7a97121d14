"""URLs of the operations pages: ``path("admin/channelworks/", include("channelworks.ops.urls"))``.

``metrics`` serves the Prometheus exposition as ``CHANNELWORKS_METRICS`` allows (off by
default: 404).
"""

from django.urls import path

from channelworks.metrics.endpoint import metrics_view
from channelworks.ops.admin import close_view, live_view

app_name = "channelworks-ops"

urlpatterns = [
    path("connections/", live_view, name="live"),
    path("connections/close/", close_view, name="close"),
    path("metrics", metrics_view, name="metrics"),
]
