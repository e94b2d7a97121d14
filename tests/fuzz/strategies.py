"""Hypothesis strategies named after the domain, and the settings every fuzz property uses."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from channelworks.consumers.handlers import api_names


def fuzz_settings(max_examples: int, *, shared_fixture: bool = False) -> settings:
    """Bounded, derandomized (the same examples on every run), no example database on disk.

    ``shared_fixture``: the test takes a function-scoped fixture on purpose (a layer whose
    connections every example shares); Hypothesis would otherwise refuse it.
    """
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if shared_fixture:
        checks.append(HealthCheck.function_scoped_fixture)
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=checks,
    )


def attribute_names(*classes: type) -> list[str]:
    """Every attribute name a message ``type`` could aim at on ``classes``: theirs, their
    metaclasses', ``object``'s and ``type``'s, and every API name of the framework classes."""
    names: set[str] = set(dir(object)) | set(dir(type))
    for cls in classes:
        names |= set(dir(cls)) | set(dir(type(cls))) | api_names(cls)
        for base in cls.__mro__:
            names |= set(vars(base))
    return sorted(names)


@st.composite
def message_types_for(draw: st.DrawFn, names: Iterable[str]) -> str:
    """A message ``type`` naming one of ``names``, with any of its underscores written as dots
    (``"send_json"``, ``"send.json"``, ``"..init.."``)."""
    name = draw(st.sampled_from(sorted(names)))
    spots = [i for i, char in enumerate(name) if char == "_"]
    dotted = draw(st.sets(st.sampled_from(spots))) if spots else set()
    return "".join("." if i in dotted else char for i, char in enumerate(name))


def message_types() -> st.SearchStrategy[Any]:
    """Whatever a sender may put in ``type``: mostly text, sometimes not a str at all."""
    return st.one_of(
        st.text(max_size=40),
        st.from_regex(r"[a-z_.]{1,30}", fullmatch=True),
        st.none(),
        st.integers(),
        st.binary(max_size=10),
    )


def wire_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Values a message may carry across processes: msgpack's types, nested."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=50),
        st.binary(max_size=50),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(
                st.one_of(st.text(max_size=10), st.integers(-(2**63), 2**64 - 1)),
                inner,
                max_size=5,
            ),
        ),
        max_leaves=max_leaves,
    )


class Opaque:
    """A value no wire format carries."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque)

    __hash__ = object.__hash__


def foreign_values() -> st.SearchStrategy[Any]:
    """Values msgpack cannot carry, or not as they are: objects, sets, complex numbers,
    integers past 64 bits, tuples (which come back as lists)."""
    return st.one_of(
        st.builds(Opaque),
        st.sets(st.integers(), max_size=3),
        st.complex_numbers(),
        st.integers(min_value=2**64),
        st.integers(max_value=-(2**63) - 1),
        st.tuples(st.integers()),
        st.frozensets(st.text(max_size=3), max_size=2),
    )


@st.composite
def layer_messages(draw: st.DrawFn, values: st.SearchStrategy[Any] | None = None) -> Any:
    """A message as a sender might hand it to ``send``/``group_send``: usually a dict with a
    plausible ``type`` and values of every kind, sometimes not valid at all."""
    kind = draw(st.one_of(st.from_regex(r"[a-z][a-z0-9_.]{0,20}", fullmatch=True), message_types()))
    body = draw(
        st.dictionaries(
            st.text(max_size=15), wire_values() if values is None else values, max_size=6
        )
    )
    body.pop("type", None)
    return {"type": kind, **body}


def channel_names() -> st.SearchStrategy[str]:
    """Channel names, valid (letters, digits, ``-_.``, one ``!``) or not."""
    valid = st.from_regex(r"[A-Za-z0-9\-_.]{1,40}(![A-Za-z0-9\-_.]{1,20})?", fullmatch=True)
    return st.one_of(valid, st.text(max_size=120))


def group_names() -> st.SearchStrategy[str]:
    """Group names, valid or not."""
    return st.one_of(st.from_regex(r"[A-Za-z0-9\-_.]{1,60}", fullmatch=True), st.text(max_size=120))


def json_documents() -> st.SearchStrategy[Any]:
    """JSON documents a client may send: nested lists/objects of JSON scalars."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
        ),
        max_leaves=25,
    )


def hostile_json_texts() -> st.SearchStrategy[str]:
    """Text that is JSON only in part, or JSON a careless decoder chokes on: deep nesting,
    huge numbers, NaN/Infinity literals, lone surrogates, truncated documents."""
    depth = st.integers(min_value=1, max_value=200_000)
    return st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
        depth.map(lambda n: "[" * n),
        st.integers(min_value=300, max_value=20_000).map(lambda n: "9" * n),
        st.integers(min_value=1, max_value=5000).map(lambda n: f"1e{n}"),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "[NaN, Infinity]", '{"x": -Infinity}']),
        st.sampled_from(['"\\ud800"', '{"\\udfff": 1}', '"\\u0000"', "\ufeff{}", "{}\x00"]),
        st.tuples(json_documents(), st.integers(0, 50)).map(lambda p: _json_text(p[0])[: p[1]]),
        st.text(),
    )


def _json_text(document: Any) -> str:
    import json

    return json.dumps(document)


@st.composite
def ws_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A ``websocket.receive`` event as a server hands it over: text (hostile or not), bytes
    (valid UTF-8 JSON, invalid UTF-8, arbitrary), or neither."""
    choice = draw(st.integers(0, 5))
    if choice == 5:
        return {"type": "websocket.receive", "text": None, "bytes": None}
    if choice == 0:
        return {"type": "websocket.receive", "text": draw(hostile_json_texts())}
    if choice == 1:
        return {"type": "websocket.receive", "text": _json_text(draw(json_documents()))}
    if choice == 2:
        return {"type": "websocket.receive", "bytes": _json_text(draw(json_documents())).encode()}
    if choice == 3:
        return {"type": "websocket.receive", "bytes": draw(st.binary(max_size=200))}
    return {"type": "websocket.receive", "bytes": b'{"a": "\xff\xfe"}'}


def same_value(left: Any, right: Any) -> bool:
    """Equality as the wire sees it: NaN equals NaN; tuples and lists are the same array."""
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(same_value, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_value(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def map_keys() -> st.SearchStrategy[Any]:
    """Keys a message's maps may have across processes: msgpack scalars and tuples of them."""
    scalar = st.one_of(
        st.text(max_size=10),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.none(),
        st.booleans(),
        st.binary(max_size=5),
        st.floats(allow_nan=False),
    )
    return st.one_of(scalar, st.tuples(scalar, scalar), st.tuples(st.tuples(scalar)))


def wire_messages() -> st.SearchStrategy[dict[Any, Any]]:
    """Messages with a valid type whose every value and key msgpack carries."""
    values = st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(min_value=-(2**63), max_value=2**64 - 1),
            st.floats(),
            st.text(max_size=30),
            st.binary(max_size=30),
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(map_keys(), inner, max_size=4),
        ),
        max_leaves=15,
    )
    return st.builds(
        lambda kind, body: {**body, "type": kind},
        st.from_regex(r"[a-z][a-z0-9_.]{0,15}", fullmatch=True),
        st.dictionaries(map_keys(), values, max_size=5),
    )


@st.composite
def corrupted(draw: st.DrawFn, payload: bytes) -> bytes:
    """``payload`` truncated, with bytes flipped, inserted or removed, or replaced whole."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "random"]))
    if how == "random" or not payload:
        return draw(st.binary(max_size=200))
    at = draw(st.integers(0, len(payload) - 1))
    if how == "truncate":
        return payload[:at]
    if how == "flip":
        return payload[:at] + bytes([payload[at] ^ draw(st.integers(1, 255))]) + payload[at + 1 :]
    if how == "insert":
        return payload[:at] + draw(st.binary(min_size=1, max_size=8)) + payload[at:]
    return payload[:at] + payload[at + draw(st.integers(1, 8)) :]
