"""Queue, exchange and channel names of one layer ``prefix``, and the message header.

Rules of this file:
- every queue and exchange the layer declares starts with ``{prefix}.``: ``{prefix}.groups``
  (the direct exchange of groups), ``{prefix}.proc.{pid}`` (a process queue),
  ``{prefix}.chan.{channel}`` (a normal channel's queue); ``{prefix}.presence.*`` and
  ``{prefix}.history.*`` are reserved for what comes next;
- a process-local channel is ``{channel prefix}.{pid}!{n}``: the ``pid`` (hex, no ``.``)
  between the last ``.`` and the ``!`` names the process queue that carries it; a name with
  no ``.`` before its ``!`` (``x!1``, as channels_rabbitmq names channels) is carried by the
  queue of ``pid`` ``x``;
- a body is one header line and the encoded message: ``KIND SENT DEADLINE NAME [NAME]\\n``,
  where ``KIND`` is ``s`` (send to channel ``NAME``), ``g`` (group ``NAME``, then the sender's
  pid when it delivered the message to its own members in memory: its reader skips the copy
  RabbitMQ routes back), ``j``/``l`` (join or leave: group, channel) or ``f`` (a flush
  marker), ``SENT`` the sender's wall clock
  in ms and ``DEADLINE`` the time after which the message has expired (0: never);
- a *batch* is several such bodies for one process queue in one message: ``b\n`` then, for
  each body, its length in decimal, ``\n`` and the body. ``records`` gives the bodies of a
  message, batch or not, in order.
"""

from __future__ import annotations

import re
import time

from channelworks.exceptions import InvalidChannelName

_PREFIX = re.compile(r"[A-Za-z0-9\-_.]{1,80}")
SEND, GROUP, JOIN, LEAVE, FLUSH = b"s", b"g", b"j", b"l", b"f"
BATCH = b"b\n"


class Names:
    """The names one layer ``prefix`` uses in RabbitMQ."""

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str) or _PREFIX.fullmatch(prefix) is None:
            raise ValueError(
                f"prefix must be 1-80 ASCII letters, digits, '-', '_' or '.', got {prefix!r}"
            )
        self.prefix = prefix
        self.groups = f"{prefix}.groups"

    def process(self, pid: str) -> str:
        return f"{self.prefix}.proc.{pid}"

    def channel(self, channel: str) -> str:
        return f"{self.prefix}.chan.{channel}"


def process_of(channel: str) -> str:
    """The process id in a process-local channel name; ``InvalidChannelName`` if it has none."""
    pid = channel.partition("!")[0].rpartition(".")[2]
    if not pid:
        raise InvalidChannelName(
            "channel", channel, "a process-local channel must look like 'prefix.PROCESS!name'"
        )
    return pid


def now_ms() -> int:
    """The wall clock in ms, as ``SENT`` and ``DEADLINE`` count it."""
    return int(time.time() * 1000)


def header(kind: bytes, sent: int, deadline: int, *names: str) -> bytes:
    return b"%s %d %d %s\n" % (kind, sent, deadline, " ".join(names).encode())


def split(body: bytes) -> tuple[bytes, int, int, list[str], bytes]:
    """``(kind, sent ms, deadline ms, names, payload)``; ``ValueError`` without a header."""
    line, newline, payload = body.partition(b"\n")
    if not newline:
        raise ValueError("a message body without a header line")
    kind, sent, deadline, *names = line.decode().split(" ")
    return kind.encode(), int(sent), int(deadline), names, payload


def batch(bodies: list[bytes]) -> bytes:
    """One message carrying ``bodies`` in order."""
    parts = [BATCH]
    for body in bodies:
        parts += (b"%d\n" % len(body), body)
    return b"".join(parts)


def records(message: bytes) -> list[bytes]:
    """The bodies in ``message``: itself, or a batch's; ``ValueError`` if a batch is cut."""
    if not message.startswith(BATCH):
        return [message]
    found = []
    at, end = len(BATCH), len(message)
    while at < end:
        newline = message.index(b"\n", at)
        size = int(message[at:newline])
        at = newline + 1 + size
        if size < 0 or at > end:
            raise ValueError("a batch whose last body is cut short")
        found.append(message[newline + 1 : at])
    return found


__all__ = [
    "FLUSH",
    "GROUP",
    "JOIN",
    "LEAVE",
    "SEND",
    "Names",
    "batch",
    "header",
    "now_ms",
    "process_of",
    "records",
    "split",
]
