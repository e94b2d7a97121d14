"""Where the limits come from: defaults, configure(), Django settings, a consumer's class."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channelworks.limits import Limits, configure, process_limits, resolve


def test_the_defaults_are_on() -> None:
    limits = Limits()
    on = [
        limits.messages_per_second,
        limits.bytes_per_second,
        limits.send_timeout,
        limits.max_pending_sends,
        limits.max_connections,
        limits.max_connections_per_user,
        limits.max_header_bytes,
        limits.max_subprotocols,
        limits.max_path_length,
    ]
    assert None not in on
    assert limits.policy == "close"
    assert limits.user_messages_per_second is None  # per user: optional


def test_off_turns_every_limit_off() -> None:
    off = Limits.off()
    assert off.messages_per_second is None
    assert off.send_timeout is None
    assert off.max_connections is None
    assert off.max_path_length is None


def test_a_dict_of_overrides_applies_over_the_process_limits() -> None:
    configure({"messages_per_second": 5})
    assert resolve({"message_burst": 7}) == Limits(messages_per_second=5, message_burst=7)
    assert resolve(None) == Limits(messages_per_second=5)
    assert resolve(Limits.off()) == Limits.off()


def test_the_django_setting_is_read_when_not_configured() -> None:
    with override_settings(CHANNELWORKS_LIMITS={"policy": "drop", "max_subprotocols": 2}):
        assert process_limits() == Limits(policy="drop", max_subprotocols=2)
    configure({"policy": "close"})
    with override_settings(CHANNELWORKS_LIMITS={"policy": "drop"}):
        assert process_limits().policy == "close"  # configure() wins


def test_resolving_the_same_spec_twice_gives_the_same_object() -> None:
    spec = {"max_connections": 3}
    assert resolve(spec) is resolve(spec)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"messages_per_secnd": 1}, TypeError, "unknown limit 'messages_per_secnd'"),
        ({"policy": "ignore"}, ValueError, "policy must be one of"),
        ({"send_timeout": 0}, ValueError, "send_timeout must be a positive number"),
        ({"max_connections": -1}, ValueError, "max_connections"),
        ({"max_subprotocols": True}, ValueError, "max_subprotocols"),
    ],
)
def test_bad_limits_are_refused_with_their_name(
    overrides: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Limits().replace(overrides)


def test_a_spec_that_is_neither_a_dict_nor_limits_is_refused() -> None:
    with pytest.raises(TypeError, match="limits must be"):
        resolve(42)
