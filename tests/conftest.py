"""Suite-wide fixtures: every test starts with no channel layer configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import SyncToAsync

from channelworks.layers import channel_layers


@pytest.fixture(autouse=True)
def _no_configured_layers() -> Iterator[None]:
    channel_layers.configure({})
    yield
    channel_layers.configure({})


@pytest.fixture(autouse=True)
def _no_connection_left_in_the_sync_thread() -> Iterator[None]:
    """Close the database connections a test left open in asgiref's shared sync thread (a
    plain ``sync_to_async`` from a test or a hook opens one and nothing closes it), so the
    next test's ``close_old_connections`` there does not need database access
    (tests/django/test_sync_thread_connections.py)."""
    yield
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
