"""The ASGI vocabulary every module of channelworks speaks.

Kept deliberately loose (``dict[str, Any]``): scopes and messages come from servers we do not
control, and the consumers validate what they use.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: what routers accept: any ASGI callable, typed loosely so that Django's ``ASGIHandler``
#: (whose parameters are typed as plain dicts) is accepted as it is
AnyASGIApp = Callable[..., Awaitable[Any]]

__all__ = ["ASGIApp", "AnyASGIApp", "Message", "Receive", "Scope", "Send"]
