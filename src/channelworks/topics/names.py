"""Topic names, topic patterns, and the layer group that carries a topic.

A topic is a layer group underneath. Group names allow only ASCII letters, digits, ``-``,
``_`` and ``.`` and fewer than 100 characters, so a topic name is encoded:

- ``group_for("room:lobby") == "topic.room_3alobby"``: letters, digits and ``-`` are kept,
  every other byte of the UTF-8 name becomes ``_`` and two lowercase hex digits. The encoding
  is reversible (``topic_of``) and keeps ``.`` out of the encoded part;
- a name whose encoding would not fit becomes ``"topic." + <its first 30 encoded characters>
  + ".h" + 40 hex digits of its SHA-256``: not reversible, but still matched by its pattern's
  ``group_regex`` (what the layer's history options use). The name alone decides the group,
  so ``broadcast`` and the consumers agree without knowing the topic's class.

A pattern is literal text with ``{param}`` placeholders; a placeholder matches one or more
characters other than ``:``. ``TopicPattern("room:{slug}").match("room:lobby") ==
{"slug": "lobby"}``.
"""

from __future__ import annotations

import hashlib
import re
import string

from channelworks.layers.names import MAX_NAME_LENGTH

GROUP_PREFIX = "topic."
_KEPT = frozenset((string.ascii_letters + string.digits + "-").encode())
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HASHED_PREFIX = 30
#: what one encoded character other than ``:`` looks like inside a group name
_ENCODED_CHAR = r"(?:[A-Za-z0-9\-]|_(?!3a)[0-9a-f]{2})"


def encode(text: str) -> str:
    """``text`` with every byte other than letters, digits and ``-`` as ``_xx``."""
    return "".join(chr(b) if b in _KEPT else f"_{b:02x}" for b in text.encode())


def decode(encoded: str) -> str:
    """The inverse of ``encode``; ``ValueError`` on text ``encode`` cannot produce."""
    out = bytearray()
    i = 0
    while i < len(encoded):
        char = encoded[i]
        if char == "_":
            out.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(char))
            i += 1
    return out.decode()


def group_for(topic: str) -> str:
    """The layer group of ``topic`` (see the module)."""
    encoded = encode(topic)
    if len(GROUP_PREFIX) + len(encoded) < MAX_NAME_LENGTH:
        return GROUP_PREFIX + encoded
    digest = hashlib.sha256(topic.encode()).hexdigest()[:40]
    return f"{GROUP_PREFIX}{encoded[:_HASHED_PREFIX]}.h{digest}"


def topic_of(group: str) -> str | None:
    """The topic a group carries, or ``None`` (not a topic group, or a hashed one)."""
    if not group.startswith(GROUP_PREFIX) or "." in group[len(GROUP_PREFIX) :]:
        return None
    try:
        return decode(group[len(GROUP_PREFIX) :])
    except (ValueError, UnicodeDecodeError):
        return None


class TopicPattern:
    """A pattern such as ``"room:{slug}"``: ``match(name)`` gives its params or ``None``."""

    __slots__ = ("group_regex", "params", "prefix", "regex", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError(f"a topic pattern must be a non-empty string, got {text!r}")
        self.text = text
        parts = _PARAM.split(text)  # literal, name, literal, name, ..., literal
        literals, names = parts[0::2], parts[1::2]
        if len(set(names)) != len(names):
            raise ValueError(f"topic pattern {text!r} names a param twice")
        if any("{" in lit or "}" in lit for lit in literals):
            raise ValueError(f"topic pattern {text!r}: a param is {{name}} (a Python identifier)")
        self.params = tuple(names)
        self.prefix = literals[0]
        regex = "".join(
            re.escape(lit) + (f"(?P<{names[i]}>[^:]+)" if i < len(names) else "")
            for i, lit in enumerate(literals)
        )
        self.regex = re.compile(regex)
        group = "".join(
            re.escape(encode(lit)) + (f"{_ENCODED_CHAR}+" if i < len(names) else "")
            for i, lit in enumerate(literals)
        )
        start = encode(self.prefix)[:_HASHED_PREFIX]
        hashed = re.escape(start) + r"[A-Za-z0-9_\-]*\.h[0-9a-f]{40}"
        self.group_regex = re.compile(rf"{re.escape(GROUP_PREFIX)}(?:{group}|{hashed})\Z")

    def match(self, topic: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(topic)
        return None if found is None else found.groupdict()

    def __repr__(self) -> str:
        return f"TopicPattern({self.text!r})"


__all__ = ["GROUP_PREFIX", "TopicPattern", "decode", "encode", "group_for", "topic_of"]
