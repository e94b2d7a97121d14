"""The Redis keyspace of one layer: every key lives under ``{prefix}:`` and is built here.

The whole keyspace (``P`` is the layer's ``prefix``, ``pid`` a process id from
``new_channel()``, ``name`` a channel or group name)::

    P:inbox:{pid}      list    entries for the process-local channels of process pid (its
                               reader's batch stays at the head until acknowledged)
    P:count:{pid}      hash    channel -> entries of a direct send not yet taken by pid's reader
    P:alive:{pid}      string  exists while process pid is alive (TTL: process_timeout)
    P:epoch            string  "<id> <hold_until_ms>": which life of the server's data this
                               is (a new id after Redis lost it; scripts.py ``EPOCH``)
    P:channel:{name}   list    entries of the normal channel ``name`` (load-balanced)
    P:hold:{name}:tag  list    the entry of ``name`` one receive (``tag``) is taking (<= 1)
    P:group:{name}     zset    @pid (process pid has members of its own) or a channel added by
                               a process that does not own it -> expiry (ms since epoch)
    P:presence:{name}  reserved for presence (who is in group ``name``)
    P:history:{name}   stream  the history log of group ``name``: ``<offset>-0 -> {m: payload}``
                               (MAXLEN ~ size; TTL: the group's history ttl)
    P:history:{name}:meta hash epoch (random, a new one each life of the log) and top (the
                               last offset given); made with the log, same TTL (scripts.py)

Rules of this file:
- the part in braces is the Redis Cluster hash tag: every key of one process shares a slot,
  and a group's zset, presence and history share one, so one Lua script may touch them
  together on any deployment (the braces cost nothing on a single server);
- the shard (or cluster slot) of a key is chosen by its *routing name*, the text in braces;
- ``prefix`` may hold letters, digits, ``-``, ``_`` and ``.`` only: no glob or brace
  characters, and no ``:`` (a trailing one, as channels_redis prefixes have, is dropped), so
  no prefix nests in another and ``P:*`` matches exactly this layer's keys (``flush()`` of
  prefix ``asgi`` would otherwise delete the keys of prefix ``asgi:tenant2``);
- a process id is never empty: a channel name with nothing between its last ``.`` and its
  ``!`` is refused (``process_of``).

Entries are bytes: a header of space-separated ASCII fields, ``\\n``, then the payload (the
codec's bytes). Channel and group names never hold a space or a newline, so the header splits
without escaping. Inbox entries::

    s <expires_ms> <origin> <channel>\\n<payload>                a send to one channel
    g <expires_ms> <origin> <group> [<channel> ...]\\n<payload>  a group_send: to pid's own
                                                                members and the channels named
    e <expires_ms> <origin> <group> <channel> ...\\n<payload>    the channels named only
    d 0 <origin> <group> <channel>\\n                            a group_discard from elsewhere
    f 0 <origin>\\n                                              a flush marker

With ``symmetric_encryption_keys`` the payload is sealed to ``bound_to(channel, expires)``
or ``bound_to_group(group, expires)`` (its target and the expiry of its entry): codec.py.

``origin`` is ``<pid>:<sequence>`` of the sending layer (``-`` when it does not matter).
Normal-channel entries are ``<expires_ms>\\n<payload>``.
"""

from __future__ import annotations

import re

from channelworks.exceptions import InvalidChannelName

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]+")


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if it can start this layer's keys, else raise ``ValueError``."""
    if not isinstance(prefix, str) or _PREFIX.fullmatch(prefix.rstrip(":")) is None:
        raise ValueError(
            "prefix must be letters, digits, '-', '_' or '.' (no ':' but a trailing one, "
            f"so that no prefix nests in another), got {prefix!r}"
        )
    return prefix.rstrip(":")


def process_of(channel: str) -> str:
    """The process id that owns the process-local ``channel`` (``"chat.pid!3"`` -> ``"pid"``).

    Raises ``InvalidChannelName`` if that id is empty (``"chat.!3"``).
    """
    head = channel[: channel.index("!")]
    pid = head[head.rfind(".") + 1 :]
    if not pid:
        raise InvalidChannelName("channel", channel, "needs a process id before its '!'")
    return pid


def bound_to(channel: str, expires: int) -> bytes:
    """What an encrypted payload for ``channel`` authenticates of its entry: its channel and
    expiry."""
    return b"%s %d" % (channel.encode(), expires)


def bound_to_group(group: str, expires: int) -> bytes:
    """What an encrypted group payload authenticates: its group and expiry, marked as a
    group's (a group may share its name with a normal channel; a name holds no space, so this
    never equals a channel's ``bound_to``)."""
    return b"group %s %d" % (group.encode(), expires)


class Keyspace:
    """Builds the keys of a layer with ``prefix``; see the module docstring for the layout."""

    def __init__(self, prefix: str) -> None:
        self.prefix = check_prefix(prefix)

    def inbox(self, pid: str) -> str:
        return f"{self.prefix}:inbox:{{{pid}}}"

    def count(self, pid: str) -> str:
        return f"{self.prefix}:count:{{{pid}}}"

    def alive(self, pid: str) -> str:
        return f"{self.prefix}:alive:{{{pid}}}"

    def hold(self, name: str, tag: str) -> str:
        """Where one receive (``tag``: process id and a number) holds what it pops from
        normal channel ``name`` until it has it (same slot as the channel)."""
        return f"{self.prefix}:hold:{{{name}}}:{tag}"

    def channel(self, name: str) -> str:
        return f"{self.prefix}:channel:{{{name}}}"

    def group(self, name: str) -> str:
        return f"{self.prefix}:group:{{{name}}}"

    def presence(self, group: str) -> str:
        """Reserved: the presence data of ``group`` (same slot as the group)."""
        return f"{self.prefix}:presence:{{{group}}}"

    def history(self, group: str) -> str:
        """The history log (stream) of ``group`` (same slot as the group)."""
        return f"{self.prefix}:history:{{{group}}}"

    def history_meta(self, group: str) -> str:
        """The epoch and last offset of ``group``'s history log (same slot as the group)."""
        return f"{self.prefix}:history:{{{group}}}:meta"

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of this layer."""
        return f"{self.prefix}:*"

    @property
    def alive_pattern(self) -> str:
        return f"{self.prefix}:alive:*"

    @property
    def epoch(self) -> str:
        """The epoch of the server's data (one per server; single server or Sentinel only)."""
        return f"{self.prefix}:epoch"

    @property
    def kept_by_flush(self) -> tuple[str, ...]:
        """Key prefixes ``flush()`` keeps: processes' liveness and the epoch (deleting them
        would cut live processes out of group sends, or look like Redis lost its data)."""
        return (self.alive_pattern[:-1], self.epoch)


__all__ = ["Keyspace", "bound_to", "bound_to_group", "check_prefix", "process_of"]
