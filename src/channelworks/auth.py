"""Django authentication in the scope: ``AuthMiddleware``, ``login``, ``logout``, ``get_user``.

Rules of this file:

- the user of a connection is the one its Django session is logged in as, decided by Django's
  own ``django.contrib.auth.get_user``: an unknown or deleted user, a backend no longer in
  ``AUTHENTICATION_BACKENDS``, an inactive user or a session auth hash that no longer matches
  (the password changed) all give ``AnonymousUser``. A malformed user id in the session is
  logged at WARNING and gives ``AnonymousUser`` too; nothing here crashes a connection;
- ``scope["user"]`` is a ``UserLazyObject``. ``AuthMiddleware`` resolves it off the event loop
  when the connection opens, so async code can read it without blocking; with ``lazy=True`` it
  is resolved on first use instead, which sync code does on the spot and async code does with
  ``await get_user(scope)``. Hazard: reading an unresolved user on the event loop would block
  it on the database, so it raises ``SynchronousOnlyOperation`` instead;
- every function that touches the session or the database has one sync implementation
  (``_login``, ``_logout``, ``_user_for_session``); the public coroutines run it in Django's
  database thread through ``database_sync_to_async``. Sync consumers call them with
  ``async_to_sync(login)(self.scope, user)``, as with Channels;
- ``login`` and ``logout`` change the session; the caller saves it (``logout`` flushes it,
  which needs no save). ``scope["user"]`` is updated in place, so every copy of the scope sees
  the new user;
- a socket ``AuthMiddleware`` (or ``login``) authenticated by a session is closed with 4401 when
  that session ends, in any process: ``channelworks.session_sockets``;
- ``TokenAuthMiddleware`` is the other way in, for clients without cookies: a token the
  project's hook rejects or fails on gives ``AnonymousUser``, never a fallback to the session.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from urllib.parse import parse_qsl

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    user_logged_in,
    user_logged_out,
)
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation, ValidationError
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from channelworks import session_sockets
from channelworks.db import database_sync_to_async
from channelworks.db_batch import Batched
from channelworks.exceptions import ChannelworksError
from channelworks.middleware import BaseMiddleware
from channelworks.sessions import HANDLED_SCOPE_TYPES, CookieMiddleware, SessionMiddleware
from channelworks.types import AnyASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    #: what ``scope["user"]`` stands for
    User: TypeAlias = AbstractBaseUser | AnonymousUser
    _LazyUserBase = LazyObject[User]
else:  # Django's LazyObject cannot be subscripted at run time
    _LazyUserBase = LazyObject

logger = logging.getLogger("channelworks.auth")


class UserLazyObject(_LazyUserBase):
    """``scope["user"]``: the connection's user, looked up from its session when first needed.

    It behaves as the user itself (attributes, ``==``, ``isinstance``). ``login`` and
    ``logout`` replace what it stands for.
    """

    def __init__(self, session: SessionBase) -> None:
        super().__init__()
        # LazyObject forwards attribute writes to the wrapped object: bypass it. Only the
        # session is kept, not the scope, so that no reference cycle outlives a connection.
        self.__dict__["_session"] = session

    def _setup(self) -> None:
        if _on_event_loop():
            raise SynchronousOnlyOperation(
                "scope['user'] is not loaded yet and this is the event loop, where loading it "
                "would block on the database: 'await channelworks.auth.get_user(scope)' first, "
                "or use AuthMiddleware without lazy=True, which loads it when the connection "
                "opens"
            )
        self._wrapped = _user_for_session(self.__dict__["_session"])


def is_resolved(user: object) -> bool:
    """Whether ``user`` (a ``scope["user"]``) is already known; only a lazy one may not be."""
    return not isinstance(user, UserLazyObject) or user._wrapped is not empty


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SessionMissing(ChannelworksError, ImproperlyConfigured, ValueError):
    """The scope has no ``session``: ``SessionMiddleware`` is missing outside the consumer.

    A ``ValueError`` with Channels' message, as Channels raises; also Django's
    ``ImproperlyConfigured``.
    """


def _session_of(scope: Scope) -> SessionBase:
    try:
        session: SessionBase = scope["session"]
    except KeyError:
        raise SessionMissing(
            "Cannot find session in scope. You should wrap your consumer in SessionMiddleware "
            "(AuthMiddlewareStack, or SessionMiddlewareStack around AuthMiddleware)."
        ) from None
    return session


def _anonymous() -> User:
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


def _user_for_session(session: SessionBase, fetched: _Fetched | None = None) -> User:
    """The user ``session`` is logged in as, or ``AnonymousUser``; may query the database.

    ``fetched``: the users a batch of handshakes read together (``_fetch_for_batch``); a
    session whose user it holds is decided without a query, by the same rules."""
    if session.is_empty():  # no key and nothing in memory: nothing to load
        return _anonymous()
    if fetched is not None:
        user = fetched.user_for(session)
        if user is not _NOT_FETCHED:
            return cast("User", user)
    from django.contrib.auth import get_user as django_get_user

    request = HttpRequest()  # Django's get_user reads request.session only
    request.session = session
    try:
        return django_get_user(request)
    except ValidationError:  # a user id the user model's primary key cannot parse
        logger.warning("A session holds a malformed user id; treating it as anonymous")
        return _anonymous()


def _resolve(user: UserLazyObject, fetched: _Fetched | None = None) -> None:
    """Resolve a lazy ``scope["user"]``; call off the event loop."""
    if user._wrapped is empty:
        if fetched is None:
            user._setup()
        else:
            user._wrapped = _user_for_session(user.__dict__["_session"], fetched)


#: what ``_Fetched.user_for`` answers for a session whose user the batch did not read
_NOT_FETCHED: Any = object()


class _Fetched:
    """The users of a batch of handshakes, read with one query; ``user_for`` decides each
    session's user as Django's ``get_user`` does with ``ModelBackend.get_user``.

    Only backends whose ``get_user`` is ``ModelBackend``'s (ModelBackend,
    AllowAllUsersModelBackend, RemoteUserBackend...) are read here; sessions of other backends
    and user ids the primary key cannot parse go through Django's ``get_user`` one by one.
    """

    __slots__ = ("backends", "given", "pk", "users")

    def __init__(self, pk: Any) -> None:
        self.pk = pk  # the user model's primary key field
        #: dotted path -> backend instance; None for a backend with a get_user of its own
        self.backends: dict[str, Any] = {}
        self.users: dict[Any, Any] = {}  # primary key -> user, for every id the batch read
        self.given: set[Any] = set()  # ids whose instance a session already got

    def user_for(self, session: SessionBase) -> Any:
        try:
            user_id = self.pk.to_python(session[SESSION_KEY])
            backend = self.backends[session[BACKEND_SESSION_KEY]]
            user = self.users[user_id]
        except (KeyError, ValidationError, TypeError):  # Django's get_user decides (and logs)
            return _NOT_FETCHED
        if backend is None:
            return _NOT_FETCHED
        if user is None:  # no such user (deleted)
            return _anonymous()
        if user_id in self.given:  # two sessions of one user: each gets an instance of its own
            user = copy.copy(user)
        self.given.add(user_id)
        if not backend.user_can_authenticate(user):
            return _anonymous()
        return _verified(session, user)


def _verified(session: SessionBase, user: AbstractBaseUser) -> User:
    """``user`` if ``session``'s auth hash matches its password's (or a ``SECRET_KEY_FALLBACKS``
    one, which is then renewed), else ``AnonymousUser`` with the session flushed: the check of
    Django's ``get_user``."""
    if not hasattr(user, "get_session_auth_hash"):
        return user
    session_hash = session.get(HASH_SESSION_KEY)
    auth_hash = user.get_session_auth_hash()
    if session_hash and constant_time_compare(session_hash, auth_hash):
        return user
    if session_hash and any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    ):
        session.cycle_key()
        session[HASH_SESSION_KEY] = auth_hash
        return user
    session.flush()
    return _anonymous()


def _fetch_for_batch(calls: list[tuple[Any, ...]]) -> _Fetched:
    """Before the users of a batch of handshakes are resolved: load their database sessions
    with one query (Django's own ``db`` backend; a key not found or expired gives an empty
    session, as Django's ``load`` does), then their users with one query."""
    from django.contrib.auth import get_user_model, load_backend
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    sessions = [user.__dict__.get("_session") for (user,) in calls if user._wrapped is empty]
    waiting: dict[str, SessionStore] = {}
    for session in sessions:
        if (
            type(session) is SessionStore
            and session.session_key
            and not hasattr(session, "_session_cache")  # not loaded yet
        ):
            waiting[session.session_key] = session
    if waiting:
        rows = _session_rows(SessionStore.get_model_class(), list(waiting), timezone.now())
        for key, session in waiting.items():
            data = rows.get(key)
            if data is None:  # unknown or expired: empty, and no key, as Django's load leaves it
                session._session_key = None
                session._session_cache = {}  # type: ignore[attr-defined]
            else:
                session._session_cache = session.decode(data)  # type: ignore[attr-defined]
    pk = get_user_model()._meta.pk
    fetched = _Fetched(pk)
    ids = set()
    for session in sessions:
        try:  # another engine's session loads here, one by one
            if session is None or session.is_empty():
                continue
            path = session.get(BACKEND_SESSION_KEY)
            user_id = session.get(SESSION_KEY)
        except Exception:  # left to its own call, which raises it to its own handshake
            continue
        if not isinstance(path, str) or path not in settings.AUTHENTICATION_BACKENDS:
            continue
        if path not in fetched.backends:
            backend = load_backend(path)
            own = type(backend).get_user is not ModelBackend.get_user  # asked one by one
            fetched.backends[path] = None if own else backend
        if fetched.backends[path] is None:
            continue
        try:
            ids.add(pk.to_python(user_id))
        except (ValidationError, TypeError):
            continue  # Django's get_user logs it, one by one
    ids.discard(None)
    if ids:
        users = get_user_model()._default_manager.in_bulk(list(ids))
        fetched.users = {user_id: users.get(user_id) for user_id in ids}
    return fetched


def _session_rows(model: Any, keys: list[str], now: Any) -> dict[str, str]:
    """The data of the unexpired sessions among ``keys``: key -> encoded data (no model
    instance per row), in as many queries as the database's parameter limit needs."""
    from django.db import router

    limit = _parameter_limit(router.db_for_read(model)) or len(keys)
    rows: dict[str, str] = {}
    for start in range(0, len(keys), limit):
        rows.update(
            model.objects.filter(
                session_key__in=keys[start : start + limit], expire_date__gt=now
            ).values_list("session_key", "session_data")
        )
    return rows


def _parameter_limit(alias: str) -> int:
    """How many query parameters database ``alias`` takes (0: no limit)."""
    from django.db import connections

    return int(connections[alias].features.max_query_params or 0)


_resolve_batched = Batched(_resolve, before=_fetch_for_batch)


def _set_user(scope: Scope, user: User) -> None:
    current = scope.get("user")
    if isinstance(current, UserLazyObject):
        current._wrapped = user  # seen by every copy of the scope
    else:
        scope["user"] = user


async def get_user(scope: Scope) -> User:
    """The user the scope's session is logged in as (``AnonymousUser`` if none).

    The user row is read again, so a deleted user or a changed password is seen; the session
    is the connection's own copy, so a logout done elsewhere (another tab, a view) is not seen
    here — it closes the socket with 4401 instead (``channelworks.session_sockets``). An
    unresolved lazy ``scope["user"]`` is resolved with the result. Needs ``scope["session"]``;
    from a sync consumer call ``async_to_sync(get_user)(scope)``.
    """
    session = _session_of(scope)
    if session.is_empty():
        user = _anonymous()
    else:
        user = await database_sync_to_async(_user_for_session)(session)
    current = scope.get("user")
    if isinstance(current, UserLazyObject) and current._wrapped is empty:
        current._wrapped = user
    return user


async def login(scope: Scope, user: AbstractBaseUser | None, backend: str | None = None) -> None:
    """Log ``user`` in on the scope's session and make it ``scope["user"]``; save the session
    afterwards (``await scope["session"].asave()``).

    ``user=None`` logs in ``scope["user"]``; without one either, ``ValueError``. Without
    ``scope["session"]``, ``ValueError`` (``SessionMissing``), as in Channels.

    As Django's ``login``: a session logged in as someone else is flushed, an anonymous one gets
    a new key (against session fixation), its other data is kept. ``backend`` is a dotted path;
    without it, ``user.backend`` (set by ``authenticate()``) or the only configured backend is
    used. ``user_logged_in`` is sent with ``request=None``. From a sync consumer call
    ``async_to_sync(login)(self.scope, user)``.

    Inside a WebSocket consumer, the socket then belongs to the new session: its end (a
    logout elsewhere) closes it with 4401 (``channelworks.session_sockets``); the session the
    socket had before may end here (its key is cycled) without closing it.
    """
    await session_sockets.unbind(scope)
    try:
        await database_sync_to_async(_login)(scope, user, backend)
    finally:
        await session_sockets.rebind(scope)


async def logout(scope: Scope) -> None:
    """Flush the scope's session (deleting it from the store) and set ``scope["user"]``, if
    the scope has one, to ``AnonymousUser``.

    ``user_logged_out`` is sent first, with ``request=None``, only if a user was logged in (as in
    Channels; Django's ``logout`` also sends it for an anonymous request).

    The session's other sockets, in every process, close with 4401; the consumer's own socket
    (when called inside one) stays open, anonymous (``channelworks.session_sockets``).

    From a sync consumer call ``async_to_sync(logout)(self.scope)``.
    """
    await session_sockets.unbind(scope)
    await database_sync_to_async(_logout)(scope)


def _login(scope: Scope, user: AbstractBaseUser | None, backend: str | None) -> None:
    session = _session_of(scope)
    if user is None:
        user = scope.get("user")
        if user is None:
            raise ValueError("User must be passed as an argument or must be present in the scope.")
    if isinstance(user, UserLazyObject):  # e.g. login(scope, scope["user"]): never self-wrap
        _resolve(user)
        user = cast("AbstractBaseUser", user._wrapped)  # checked just below
    if not getattr(user, "is_authenticated", False):
        raise ValueError(f"login() needs a user to log in, not {user!r}")
    auth_hash = user.get_session_auth_hash()
    if SESSION_KEY in session:
        if _stored_user_id(session) != user.pk or not constant_time_compare(
            session.get(HASH_SESSION_KEY, ""), auth_hash
        ):
            session.flush()  # never carry another user's session data over
    else:
        session.cycle_key()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = _backend_path(user, backend)
    session[HASH_SESSION_KEY] = auth_hash
    _set_user(scope, user)
    user_logged_in.send(sender=type(user), request=None, user=user)


def _stored_user_id(session: SessionBase) -> Any:
    from django.contrib.auth import get_user_model

    try:
        return get_user_model()._meta.pk.to_python(session[SESSION_KEY])
    except ValidationError:
        return None


def _backend_path(user: AbstractBaseUser, backend: str | None) -> str:
    path = backend or getattr(user, "backend", None)
    if path is None:
        backends = settings.AUTHENTICATION_BACKENDS
        if len(backends) != 1:
            raise ValueError(
                "Several authentication backends are configured: pass login(..., backend=) "
                "or log in a user returned by authenticate(), which sets user.backend"
            )
        path = backends[0]
    if not isinstance(path, str):
        raise TypeError(f"backend must be a dotted path string, not {path!r}")
    return path


def _logout(scope: Scope) -> None:
    session = _session_of(scope)
    user = scope.get("user")
    if isinstance(user, UserLazyObject):  # receivers get the user, not the wrapper re-pointed below
        _resolve(user)
        user = user._wrapped
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    if user is not None:
        user_logged_out.send(sender=type(user), request=None, user=user)
    session.flush()
    if "user" in scope:
        _set_user(scope, _anonymous())


class AuthMiddleware(BaseMiddleware):
    """Puts the connection's user in ``scope["user"]`` (a ``UserLazyObject``); needs
    ``SessionMiddleware`` outside it (``AuthMiddlewareStack`` builds the three).

    By default the user is loaded when the connection opens, in Django's database thread (no
    query at all without a session cookie), so consumers of either flavour read
    ``scope["user"]`` directly. ``lazy=True`` defers that to the first use: sync code loads it
    on the spot, async code must ``await get_user(scope)`` before reading it. A
    ``scope["user"]`` set by an outer middleware is replaced.
    """

    def __init__(self, inner: AnyASGIApp, *, lazy: bool = False) -> None:
        super().__init__(inner)
        self.lazy = lazy
        session_sockets.install()  # sockets close when their session ends (also: app ready)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in HANDLED_SCOPE_TYPES:
            await self.inner(scope, receive, send)
            return
        session = _session_of(scope)
        scope = dict(scope)
        user = scope["user"] = UserLazyObject(session)
        if not self.lazy:
            if session.is_empty():  # no session cookie: no thread, no query
                user._wrapped = _anonymous()
            else:
                await _resolve_batched(user)  # a storm of handshakes: one hop (db_batch.py)
        inner = self.inner(scope, receive, send)
        del scope  # this frame lasts as long as the connection: it keeps no copy of the scope
        await inner


#: a project's token hook: a sync or async callable from a token to its user, ``None`` if the
#: token is unknown, expired or malformed
TokenResolver: TypeAlias = Callable[[str], Any]

#: the setting naming the default token hook, as a dotted path
TOKEN_RESOLVER_SETTING = "CHANNELWORKS_TOKEN_RESOLVER"


class TokenAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from a token, for clients that are not browsers (scripts, apps).

    The token is read from an ``Authorization: Bearer <token>`` header or, failing that, from
    the query string (``?token=<token>``; ``query_param`` renames it). ``resolve_token`` maps
    it to a user: a sync callable (run in Django's database thread), an ``async`` one, or a
    dotted path to either; without it, the ``CHANNELWORKS_TOKEN_RESOLVER`` setting names one.

    A token the hook rejects (returns ``None``) or fails on (raises; logged at WARNING) gives
    ``AnonymousUser``, never the user an outer middleware found. Without any token an existing
    ``scope["user"]`` is kept, so ``AuthMiddlewareStack(TokenAuthMiddleware(app, ...))``
    accepts both session cookies and tokens; alone, it gives ``AnonymousUser``.
    """

    def __init__(
        self,
        inner: AnyASGIApp,
        resolve_token: TokenResolver | str | None = None,
        *,
        query_param: str = "token",
    ) -> None:
        super().__init__(inner)
        self.resolve_token = _load_resolver(resolve_token)
        self.query_param = query_param
        self._resolver_is_async = _is_async_callable(self.resolve_token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in HANDLED_SCOPE_TYPES:
            await self.inner(scope, receive, send)
            return
        scope = dict(scope)
        token = token_from_scope(scope, self.query_param)
        if token is not None:
            scope["user"] = await self.user_for_token(token)
        elif "user" not in scope:
            scope["user"] = _anonymous()
        inner = self.inner(scope, receive, send)
        del scope  # this frame lasts as long as the connection: it keeps no copy of the scope
        await inner

    async def user_for_token(self, token: str) -> User:
        """The hook's user for ``token``; ``AnonymousUser`` if it returns ``None`` or raises."""
        resolver = self.resolve_token
        try:
            if self._resolver_is_async:
                user = await resolver(token)
            else:
                user = await database_sync_to_async(resolver)(token)
                if inspect.isawaitable(user):  # a plain wrapper around an async function
                    user = await user
        except Exception:
            logger.warning(
                "Token resolver %s failed; the connection is anonymous",
                _name(resolver),
                exc_info=True,
            )
            return _anonymous()
        if user is None:
            return _anonymous()
        if not hasattr(user, "is_authenticated"):
            raise TypeError(
                f"Token resolver {_name(resolver)} must return a user or None, not {user!r}"
            )
        resolved: User = user
        return resolved


def token_from_scope(scope: Scope, query_param: str = "token") -> str | None:
    """The bearer token of an ``Authorization`` header, else the ``query_param`` value of the
    query string, else ``None``. Other ``Authorization`` schemes are ignored."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    query: bytes | str = scope.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    for key, param in parse_qsl(query):
        if key == query_param and param:
            return param
    return None


def _load_resolver(resolve_token: TokenResolver | str | None) -> TokenResolver:
    if resolve_token is None:
        resolve_token = getattr(settings, TOKEN_RESOLVER_SETTING, None)
        if resolve_token is None:
            raise ImproperlyConfigured(
                f"TokenAuthMiddleware needs resolve_token= or the {TOKEN_RESOLVER_SETTING} "
                f"setting (a dotted path to a callable taking a token, returning a user or None)"
            )
    if isinstance(resolve_token, str):
        try:
            resolve_token = import_string(resolve_token)
        except ImportError as exc:
            raise ImproperlyConfigured(f"Cannot import token resolver: {exc}") from exc
    if not callable(resolve_token):
        raise ImproperlyConfigured(f"The token resolver {resolve_token!r} is not callable")
    return resolve_token


def _is_async_callable(function: object) -> bool:
    """An ``async def`` function, or an object whose class has an ``async def __call__``."""
    return iscoroutinefunction(function) or iscoroutinefunction(
        inspect.getattr_static(type(function), "__call__", None)
    )


def _name(function: object) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def AuthMiddlewareStack(inner: AnyASGIApp) -> CookieMiddleware:  # Channels' name
    """``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``."""
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))


__all__ = [
    "AuthMiddleware",
    "AuthMiddlewareStack",
    "TokenAuthMiddleware",
    "TokenResolver",
    "UserLazyObject",
    "get_user",
    "is_resolved",
    "login",
    "logout",
    "token_from_scope",
]
