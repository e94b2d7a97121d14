"""Long, coverage-guided fuzzing with atheris (libFuzzer): not part of the suite.

Run one target (docs/fuzzing.md)::

    uv run --with atheris python -m tests.fuzz.atheris_run codec -atheris_runs=1000000
    uv run --with atheris python -m tests.fuzz.atheris_run frames -max_total_time=300

Targets, each a property of what another process or a client can hand us:

- ``codec``: any bytes given to ``Codec.decode``/``unseal`` (plain and encrypted) give a dict
  or ``UndecodableMessage``; a dict they give re-encodes and decodes equal;
- ``frames``: any text or bytes frame given to a JSON consumer decodes or raises
  ``InvalidFrame`` (close 1007), nothing else;
- ``dispatch``: any message type resolves to one of the consumer's own handlers or raises
  ``UnhandledMessageType``;
- ``inbox``: any list of Redis inbox entries (as other processes write them) is delivered,
  counted or dropped by the reader without an exception escaping it.

A failing input is written by libFuzzer to ``crash-<sha1>`` in the working directory; run the
same command with that file as its argument to replay it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

with atheris.instrument_imports():
    from channelworks.consumers import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer
    from channelworks.consumers.handlers import resolve
    from channelworks.exceptions import InvalidFrame, UnhandledMessageType
    from channelworks.layers.codec import Codec, UndecodableMessage
    from channelworks.types import Message

from tests.fuzz.strategies import attribute_names, same_value

LOOP = asyncio.new_event_loop()
PLAIN = Codec()
SEALED = Codec(["a key of at least thirty-two bytes, for the fuzz runs"])


def decode(codec: Codec, call: Callable[[], dict[Any, Any]]) -> None:
    """``call`` gives a dict that round trips, or raises UndecodableMessage."""
    try:
        message = call()
    except UndecodableMessage:
        return
    if not isinstance(message, dict):
        raise AssertionError(f"decoded to {type(message).__name__}")
    again = codec.decode(codec.encode(message))
    if not same_value(again, message):
        raise AssertionError(f"{message!r} came back as {again!r}")


def codec_target(data: bytes) -> None:
    decode(PLAIN, lambda: PLAIN.decode(data))
    decode(SEALED, lambda: SEALED.decode(data))
    bound, _, payload = data.partition(b"\n")
    decode(SEALED, lambda: SEALED.unseal(payload, bound, 60))
    decode(PLAIN, lambda: PLAIN.unseal(payload, bound))


class Echo(AsyncJsonWebsocketConsumer):
    async def chat_message(self, event: Message) -> None:
        pass


class SyncEcho(JsonWebsocketConsumer):
    def chat_message(self, event: Message) -> None:
        pass


ECHO = Echo()
SYNC_ECHO = SyncEcho()


def frames_target(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    as_text = provider.ConsumeBool()
    rest = provider.ConsumeBytes(provider.remaining_bytes())
    try:
        text = rest.decode("utf-8", "surrogatepass") if as_text else None
    except UnicodeDecodeError:
        return  # not text a server could hand over
    frame = (text, None if as_text else rest)
    decoders: tuple[Callable[[], Any], ...] = (
        lambda: LOOP.run_until_complete(ECHO._decode_frame(*frame)),  # the async consumer's
        lambda: SYNC_ECHO.decode_frame(*frame),
    )
    for decode_frame in decoders:
        try:
            decode_frame()
        except InvalidFrame as exc:
            if exc.code != 1007:
                raise AssertionError(f"closed with {exc.code}") from exc


#: the echo consumers' handlers, and the framework's one layer-message handler (it closes only
#: a socket whose own session group the message names: channelworks.session_sockets)
HANDLERS = {"chat_message", "channelworks_session_ended"}


#: names a type may aim at: the echo consumers', their metaclass', object's and the framework's
NAMES = attribute_names(Echo, SyncEcho)


def dispatch_target(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    if provider.ConsumeBool():  # a known name, some of its underscores written as dots
        name = provider.PickValueInList(NAMES)
        kind = "".join(
            "." if char == "_" and provider.ConsumeBool() else char for char in name
        ) + provider.ConsumeUnicodeNoSurrogates(4)
    else:
        kind = provider.ConsumeUnicodeNoSurrogates(64)
    for cls in (Echo, SyncEcho):
        try:
            name = resolve(cls, kind, cls is SyncEcho)[0]
        except UnhandledMessageType:
            continue
        if name not in HANDLERS and not name.startswith("websocket_"):
            raise AssertionError(f"{kind!r} reached {cls.__name__}.{name}")


KINDS = [b"s", b"g", b"d", b"f", b"x", b""]
CHANNELS = [b"c.me!1", b"c.me!2", b"c.other!1", b"bad!", b"room", b"c.me!"]


def inbox_target(data: bytes) -> None:
    from tests.layers.redis.test_parts import make_reader

    provider = atheris.FuzzedDataProvider(data)
    reader, _, _ = make_reader(capacity=provider.ConsumeIntInRange(1, 4))
    entries = []
    for _ in range(provider.ConsumeIntInRange(0, 6)):
        if provider.ConsumeBool():
            entries.append(provider.ConsumeBytes(provider.ConsumeIntInRange(0, 80)))
            continue
        fields = [provider.PickValueInList(KINDS)]
        fields.append(b"%d" % provider.ConsumeIntInRange(0, 2**47))
        fields.append(provider.PickValueInList([b"o:1", b"me:2", b"x:y", b"o:1:2", b"-"]))
        for _ in range(provider.ConsumeIntInRange(0, 3)):
            fields.append(provider.PickValueInList(CHANNELS))
        head = b" ".join(fields)
        payload = (
            PLAIN.encode({"type": provider.ConsumeUnicodeNoSurrogates(8) or "t"})
            if provider.ConsumeBool()
            else provider.ConsumeBytes(provider.ConsumeIntInRange(0, 40))
        )
        entries.append(head + b"\n" + payload)
    LOOP.run_until_complete(reader.deliver(entries))


TARGETS = {
    "codec": codec_target,
    "frames": frames_target,
    "dispatch": dispatch_target,
    "inbox": inbox_target,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(
            f"usage: python -m tests.fuzz.atheris_run {{{'|'.join(TARGETS)}}} [libFuzzer flags]"
        )
    target = TARGETS[sys.argv.pop(1)]
    logging.disable(logging.CRITICAL)  # the layers log each entry they drop: counted instead
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
