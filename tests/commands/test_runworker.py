"""``manage.py runworker``: refusals in-process, the run itself in-process and as a process."""

from __future__ import annotations

import asyncio
import io
import signal
import threading

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.management.commands.runworker import Command
from channelworks.routing import get_default_application
from channelworks.worker import Worker
from tests.commands.processes import START_TIMEOUT, django_command
from tests.commands.project import consumers
from tests.commands.waits import TIMEOUT, wait_until

PROJECT_ASGI = "tests.commands.project.asgi.application"
MEMORY = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("runworker", *args)
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [("bad name", "'bad name'"), ("specific.abc!def", "process-local"), ("x" * 100, "100")],
)
def test_refuses_an_invalid_channel_name(name: str, words: str) -> None:
    channel_layers.configure(MEMORY)
    assert words in refusal(name)


def test_refuses_without_a_channel_name() -> None:
    assert "CHANNEL" in refusal()


def test_refuses_when_the_layer_is_missing() -> None:
    message = refusal("thumbnail-generate")  # the suite starts with no layer configured
    assert "'default'" in message
    assert "CHANNEL_LAYERS" in message


def test_refuses_when_the_named_layer_is_missing() -> None:
    channel_layers.configure(MEMORY)
    assert "'other'" in refusal("thumbnail-generate", "--layer", "other")


def test_refuses_a_broken_layer() -> None:
    channel_layers.configure({"default": {"BACKEND": "nowhere.Layer"}})
    assert "'nowhere.Layer'" in refusal("thumbnail-generate")


def test_refuses_an_application_without_a_channel_branch() -> None:
    channel_layers.configure(MEMORY)  # tests.settings' application routes http only
    assert "thumbnail-generate" in refusal("thumbnail-generate")


@override_settings(ASGI_APPLICATION=PROJECT_ASGI)
def test_refuses_a_channel_the_router_does_not_know() -> None:
    channel_layers.configure(MEMORY)
    message = refusal("thumbnail-generate", "thumbnail-delete")
    assert "thumbnail-delete" in message
    assert "thumbnail-generate" not in message


@override_settings(ASGI_APPLICATION="tests.commands.project.nowhere.application")
def test_refuses_an_application_that_cannot_be_imported() -> None:
    channel_layers.configure(MEMORY)
    assert "tests.commands.project.nowhere.application" in refusal("thumbnail-generate")


@override_settings(ASGI_APPLICATION=PROJECT_ASGI)
async def test_the_command_handles_messages_and_stops_on_sigterm() -> None:
    """What ``handle`` runs, in this process: a message sent before is handled, SIGTERM ends."""
    assert threading.current_thread() is threading.main_thread()
    consumers.generated.clear()
    layer = InMemoryChannelLayer()
    await layer.send("thumbnail-generate", {"type": "thumbnail.generate", "name": "cat.png"})
    await layer.send("thumbnail-generate", {"type": "thumbnail.generate", "name": "dog.png"})
    stdout = io.StringIO()
    command = Command(stdout=stdout)
    worker = Worker(get_default_application(), layer, ["thumbnail-generate"])
    before = signal.getsignal(signal.SIGTERM)
    task = asyncio.create_task(command.run_worker(worker, "default"))
    await wait_until(lambda: consumers.generated == ["cat.png", "dog.png"])
    assert "Running worker for channel(s) thumbnail-generate" in stdout.getvalue()
    # Raising SIGTERM without the worker's handler would end the test run: check it is there.
    assert signal.getsignal(signal.SIGTERM) not in (before, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)
    async with asyncio.timeout(TIMEOUT):
        await task
    assert stdout.getvalue().endswith("Worker stopped.\n")
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_process_exits_0_on_a_stop_signal(signum: signal.Signals) -> None:
    with django_command("runworker", "thumbnail-generate") as worker:
        worker.wait_for(r"Running worker for channel\(s\) thumbnail-generate", START_TIMEOUT)
        worker.send_signal(signum)
        assert worker.wait() == 0
        assert "Worker stopped." in worker.drain()


def test_the_process_refuses_a_bad_name_with_status_1() -> None:
    with django_command("runworker", "bad!") as worker:
        status = worker.wait(START_TIMEOUT)
        output = worker.drain()
    assert status == 1
    assert "CommandError" in output
    assert "'bad!'" in output
