"""The test project's URLs plus views over ``Note`` (``ROOT_URLCONF`` of the live tests)."""

from __future__ import annotations

from django.urls import path

from tests.djangoapp.urls import urlpatterns as project_urlpatterns
from tests.live import views

urlpatterns = [
    *project_urlpatterns,
    path("notes/", views.notes),
    path("connection/", views.connection_id),
]
