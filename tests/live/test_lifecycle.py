"""When live servers start and stop, driven through unittest's suite (as a runner does)."""

from __future__ import annotations

import threading
import unittest

import pytest
from websockets.exceptions import ConnectionClosed

from tests.live import sequence_cases as cases
from tests.live.clients import TIMEOUT, accepts_connections

# The classes are imported through their module: a TestCase class in this module's namespace
# would be collected by pytest and run a second time. They are TransactionTestCases, which
# flush the database after each test, hence the marker.
pytestmark = pytest.mark.django_db(transaction=True)


def run(*tests: unittest.TestCase) -> unittest.TestResult:
    result = unittest.TestResult()
    unittest.TestSuite(tests).run(result)
    return result


def problems(result: unittest.TestResult) -> list[str]:
    return [text for _, text in (*result.errors, *result.failures)]


def live_server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "channelworks-live-server"]


def test_two_classes_in_a_row_each_get_a_server_and_the_first_is_stopped() -> None:
    result = run(cases.First("test_serves"), cases.Second("test_serves_while_first_is_stopped"))
    assert problems(result) == []
    assert result.testsRun == 2
    assert not accepts_connections(cases.PORTS["Second"])
    assert live_server_threads() == []


def test_no_live_server_outside_the_class_run() -> None:
    with pytest.raises(RuntimeError, match="First has no live server"):
        _ = cases.First.live_server_url
    with pytest.raises(RuntimeError, match="First has no live server"):
        _ = cases.First.live_server_ws_url


def test_stopping_closes_sockets_left_open_with_1012() -> None:
    with cases.OPEN_SOCKETS:
        result = run(cases.LeavesSocketOpen("test_opens_a_socket"))
        assert problems(result) == []
        [ws] = cases.OPEN_CONNECTIONS
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 1012  # "service restart"
    assert live_server_threads() == []


def test_a_failing_setupclass_still_stops_the_server() -> None:
    result = run(cases.FailsAfterServerStarts("test_never_runs"))
    [error] = problems(result)
    assert "setUpClass failed after the server started" in error
    assert result.testsRun == 0
    assert not accepts_connections(cases.PORTS["FailsAfterServerStarts"])
    assert live_server_threads() == []


def test_a_server_that_cannot_start_fails_setupclass() -> None:
    result = run(cases.StartupFails("test_never_runs"))
    [error] = problems(result)
    assert "The live server failed to start" in error
    assert result.testsRun == 0
    assert live_server_threads() == []


def test_a_bad_uvicorn_option_fails_setupclass_before_any_thread_starts() -> None:
    result = run(cases.BadOption("test_never_runs"))
    [error] = problems(result)
    assert "no_such_option" in error
    assert live_server_threads() == []
