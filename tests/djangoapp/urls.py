"""URLs of the test project: plain Django views that share sessions with the sockets."""

from __future__ import annotations

from django.urls import path

from tests.djangoapp import views

urlpatterns = [
    path("whoami/", views.whoami),
]
