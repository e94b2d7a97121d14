"""The ``channelworks`` console command.

Subcommands register themselves in ``COMMANDS``; running without one prints the help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from channelworks import __version__

#: subcommand name -> (help line, function that adds its arguments, function that runs it)
COMMANDS: dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
] = {}


def _demo_command() -> None:
    # Only argparse-level code is imported here; Django waits until the command runs.
    from channelworks.demo import command

    COMMANDS["demo"] = (
        "Run the demo site: chat, notifications, a live blog, echo and a worker.",
        command.add_arguments,
        command.run,
    )


_demo_command()


def _status_command() -> None:
    from channelworks.ops import status

    COMMANDS["status"] = (
        "Show the live processes, connections, groups and counters of a site (through its "
        "channel layer).",
        status.add_arguments,
        status.run,
    )


_status_command()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="channelworks",
        description="Real-time Django: consumers, routing and channel layers over ASGI.",
    )
    parser.add_argument("--version", action="version", version=f"channelworks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_line, add_arguments, _) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_line, description=help_line))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return COMMANDS[args.command][2](args)


if __name__ == "__main__":
    sys.exit(main())
