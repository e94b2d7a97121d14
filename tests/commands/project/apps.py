"""The project's app: lets a test hand the autoreloader one more file to watch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.utils.autoreload import BaseReloader, autoreload_started

#: environment variable naming a file the autoreloader should also watch
WATCH_ENV = "CHANNELWORKS_TEST_WATCH_FILE"


def watch_test_file(sender: BaseReloader, **kwargs: Any) -> None:
    path = os.environ.get(WATCH_ENV)
    if path:
        sender.extra_files.add(Path(path))


class ProjectConfig(AppConfig):
    name = "tests.commands.project"

    def ready(self) -> None:
        autoreload_started.connect(watch_test_file)
