"""The ``channelworks`` console command."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from channelworks import __version__
from channelworks.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"channelworks {__version__}"


def test_help_and_no_command_print_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: channelworks" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Real-time Django" in capsys.readouterr().out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_installed_console_script() -> None:
    script = shutil.which("channelworks")
    assert script is not None, "the channelworks console script is not installed"
    result = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert __version__ in result.stdout
