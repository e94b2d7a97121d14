"""The proof that a layer message was sent by channelworks itself, not by an application.

Some layer messages make consumers act on a client's behalf: ``presence.diff`` (who is in a
room), ``topics.push`` (a frame to every client of a topic), ``topics.kick`` (leave a topic).
A site that forwards client JSON into ``group_send`` (a common Channels pattern) must not let
a client forge them. So channelworks puts the layer's token in each (``TOKEN``), and
consumers act only on messages that carry it (``carries_token``).

The token is an HMAC of Django's ``SECRET_KEY``: the same in every process of a site, never
sent to a client. Without Django settings it is random for a one-process layer, or derived
from the layer's prefix for a shared one (guessable: configure Django).
"""

from __future__ import annotations

import hmac
import secrets
import weakref
from collections.abc import Mapping
from typing import Any

#: the key of a layer message's token
TOKEN = "token"
#: layer -> its token
_tokens: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def layer_token(layer: object) -> str:
    """The token channelworks' own layer messages on ``layer`` carry."""
    known = _tokens.get(layer)
    if known is not None:
        return known
    secret = _django_secret()
    if secret is None:
        if not getattr(layer, "presence_distributed", True):
            secret = secrets.token_hex(16)
        else:
            secret = f"channelworks-without-secret-key:{getattr(layer, 'prefix', '')}"
    # The label is the one presence diffs used first: processes of two versions agree.
    token = hmac.new(secret.encode(), b"channelworks.presence.diff", "sha256").hexdigest()[:32]
    _tokens[layer] = token
    return token


def carries_token(layer: object, message: Mapping[str, Any]) -> bool:
    """Whether ``message`` carries ``layer``'s token."""
    token = message.get(TOKEN)
    return (
        layer is not None
        and isinstance(token, str)
        and hmac.compare_digest(token, layer_token(layer))
    )


def _django_secret() -> str | None:
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a dependency
        return None
    try:
        secret = settings.SECRET_KEY if settings.configured else None
    except Exception:  # settings that do not load: no secret
        return None
    return secret if isinstance(secret, str) and secret else None


__all__ = ["TOKEN", "carries_token", "layer_token"]
