"""channelworks.client.load against a real server: counts, refusals, failures."""

from __future__ import annotations

import pytest

from channelworks.client.load import main, run
from channelworks.topics import TopicsConsumer
from tests.server.live import TIMEOUT
from tests.topics.apps import Room
from tests.topics.conftest import Serve


async def test_a_load_run_measures_joins_pushes_and_fan_out(serve: Serve) -> None:
    live = await serve(TopicsConsumer.as_asgi(topics=[Room]))
    report = await run(
        live.ws("/"),
        "room:load",
        sockets=5,
        event="say",
        payload={"body": "x"},
        pushes=3,
        listen=TIMEOUT,
        until_received=5 * 3 * 5,  # every push is broadcast to the 5 members
    )
    assert (report.joined, len(report.join_seconds)) == (5, 5)
    assert len(report.push_seconds) == 15
    assert report.received == {"said": 75}
    assert "push round trip: median" in report.summary()


async def test_refusals_and_failed_pushes_are_counted_by_reason(serve: Serve) -> None:
    live = await serve(TopicsConsumer.as_asgi(topics=[Room]))
    refused = await run(live.ws("/"), "room:vip", sockets=3)
    assert (refused.joined, refused.refused) == (0, {"wrong_password": 3})
    failing = await run(live.ws("/"), "room:f", sockets=2, event="fail", pushes=2, timeout=2)
    assert failing.push_failures == {"error:asked to fail": 4}
    silent = await run(live.ws("/"), "room:s", sockets=1, event="silence", pushes=1, timeout=0.3)
    assert silent.push_failures == {"timeout": 1}


def test_the_command_line_prints_a_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    async def fake_run(url: str, topic: str, **options: object) -> object:
        from channelworks.client.load import LoadReport

        seen.update(url=url, topic=topic, **options)
        return LoadReport(sockets=2, joined=2)

    monkeypatch.setattr("channelworks.client.load.run", fake_run)
    main(["ws://h/ws/", "room:a", "--sockets", "2", "--params", '{"nick": "x"}', "--expect", "9"])
    assert seen["sockets"] == 2
    assert seen["until_received"] == 9
    assert seen["params"] == {"nick": "x"}
    assert "sockets 2, joined 2" in capsys.readouterr().out
