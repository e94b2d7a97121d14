"""The ASGI vocabulary every module of channelworks speaks.

Kept deliberately loose (``dict[str, Any]``): scopes and messages come from servers we do not
control, and the consumers validate what they use.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import markcoroutinefunction

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: what routers accept: any ASGI callable, typed loosely so that Django's ``ASGIHandler``
#: (whose parameters are typed as plain dicts) is accepted as it is
AnyASGIApp = Callable[..., Awaitable[Any]]


async def _asgi3_signature(scope: Scope, receive: Receive, send: Send) -> None:
    """The code an ``Asgi3Callable`` shows to ``inspect``: an ASGI 3 application's."""


class Asgi3Callable:
    """Base of an ASGI application whose ``__call__`` is a plain ``def`` that returns the
    awaitable of the application it hands the connection to (a router, ``as_asgi()``).

    An ``async def __call__`` would be one frame more in the await chain of every message
    and would last as long as the connection (about 400 bytes each). Servers tell an ASGI 3
    application by ``iscoroutinefunction``, so this passes for one: a subclass's ``__call__``
    gets asyncio's and asgiref's marker (``markcoroutinefunction``), and an instance has the
    attributes ``inspect`` takes for a function's (``__code__`` that of an ``async def``:
    hypercorn's test on Python 3.11). An error the plain ``__call__`` raises comes from the
    call instead of the first ``await``; for ``await app(scope, receive, send)`` that is the
    same.
    """

    __slots__ = ()
    __code__ = _asgi3_signature.__code__
    __defaults__ = None
    __kwdefaults__ = None
    __name__ = "asgi_application"  # an instance's: the class keeps its own

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = vars(cls).get("__call__")
        if call is not None:
            markcoroutinefunction(call)


__all__ = ["ASGIApp", "AnyASGIApp", "Asgi3Callable", "Message", "Receive", "Scope", "Send"]
