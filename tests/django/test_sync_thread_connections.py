"""A database connection a test opened in asgiref's shared sync thread is closed after it.

``sync_to_async`` called straight from a test (no consumer around it) runs in asgiref's one
shared thread, and a connection it opens there (nothing closes it: that is what
``database_sync_to_async`` adds) outlives the test; the next test's ``database_sync_to_async``
then checks it with ``close_old_connections`` and, without database access, fails.
The suite's fixture (tests/conftest.py) closes them after every test. These two tests run in
this order and fail without it.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from channelworks.db import database_sync_to_async


@pytest.mark.django_db
async def test_a_test_with_the_database_leaves_a_connection_in_the_sync_thread() -> None:
    assert await sync_to_async(User.objects.count)() == 0


async def test_the_next_test_without_the_database_calls_into_that_thread() -> None:
    assert await database_sync_to_async(lambda: "no database needed")() == "no database needed"
