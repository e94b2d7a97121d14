"""Live tests on an in-memory SQLite database, run in a fresh process by ``test_memory_database``.

Not collected by the suite itself (the file name does not start with ``test_``): the suite's
database is a file. Two classes, so that ``--parallel 2`` gives each its own worker process.
"""

from __future__ import annotations

from django.db import connections

from tests.djangoapp.models import Note
from tests.live.base import LiveTestCase
from tests.live.clients import http, recv_json, websocket


class MemoryDatabaseViewTests(LiveTestCase):
    def test_the_database_is_in_memory(self) -> None:
        connection = connections["default"]
        assert connection.vendor == "sqlite"
        assert connection.is_in_memory_db()  # type: ignore[attr-defined]

    def test_views_use_the_test_threads_connection(self) -> None:
        status, body = http(f"{self.live_server_url}/connection/")
        assert (status, body) == (200, str(id(connections["default"])))

    def test_a_view_sees_rows_committed_by_the_test(self) -> None:
        Note.objects.create(text="memory")
        assert http(f"{self.live_server_url}/notes/") == (200, "memory")

    def test_the_test_sees_rows_written_by_a_view(self) -> None:
        status, _ = http(f"{self.live_server_url}/notes/", {"text": "from a view"})
        assert status == 201
        assert list(Note.objects.values_list("text", flat=True)) == ["from a view"]


class MemoryDatabaseSocketTests(LiveTestCase):
    def test_model_save_in_the_test_reaches_a_connected_socket(self) -> None:
        with websocket(f"{self.live_server_ws_url}/ws/notes/") as ws:
            Note.objects.create(text="hi")
            assert recv_json(ws) == {"saved": "hi"}

    def test_database_sync_to_async_in_a_consumer_sees_rows_of_the_test(self) -> None:
        Note.objects.create(text="seen")
        with websocket(f"{self.live_server_ws_url}/ws/notes/") as ws:
            ws.send('{"action": "list"}')
            assert recv_json(ws) == {"notes": ["seen"]}

    def test_a_sync_consumer_sees_rows_committed_by_the_test(self) -> None:
        Note.objects.create(text="committed")
        with websocket(f"{self.live_server_ws_url}/ws/sync-notes/") as ws:
            ws.send('{"action": "list"}')
            assert recv_json(ws) == {"notes": ["committed"]}
