"""URLs of the operations tests: the admin and the operations pages beside it."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/channelworks/", include("channelworks.ops.urls")),
    path("admin/", admin.site.urls),
]
