"""Sockets a Django session authenticated, closed (4401) when that session ends, everywhere.

Rules of this file:

- a WebSocket consumer whose ``scope["user"]`` was authenticated by its ``scope["session"]``
  (``AuthMiddleware``, or ``login()`` inside the consumer) joins two groups when it accepts:
  one for the session key, one for the user. Their names are ``channelworks.session.<h>`` and
  ``channelworks.user.<h>``, where ``<h>`` is an HMAC of the key or user id under
  ``SECRET_KEY`` (``salted_hmac``): a raw session key never appears in a group name or a layer
  message, and nobody without ``SECRET_KEY`` can name another's group;
- a session *ends* when it is flushed (Django's and channelworks' ``logout``, a view calling
  ``session.flush()``) or its key is cycled while it holds a user (``login`` again,
  ``update_session_auth_hash`` after a password change): the old key is deleted, so a socket
  holding it is no longer backed by any session. A user's password set (``set_password``, then
  ``save``) ends every session of that user, as in Django. Each sends one
  ``channelworks.session.ended`` message to the group, on the ``default`` channel layer, from
  whatever process it happens in (a sync view, a worker, an ASGI consumer);
- a consumer closes with 4401 only for a message naming one of its own groups: a client that
  forwards JSON into a ``group_send`` of a room cannot close anyone by sending that type;
- ``login()``/``logout()`` inside a consumer move that consumer's own socket first (it leaves
  its groups before the session changes and joins the new session's after ``login``), so the
  calling socket stays open while the session's other sockets close;
- without a configured layer nothing is sent and nothing fails; a layer that fails is logged
  at ERROR and the logout goes on (it must never be refused because Redis is down);
- an anonymous socket costs one small object in its scope and no layer call.

Hazard: the hooks wrap ``flush``/``cycle_key`` (and their ``a``-twins) of ``SessionBase`` and
of the configured engine's classes, once per process (``install()``, from the app's ``ready``
and from ``channelworks.auth``; a changed ``SESSION_ENGINE`` setting is hooked too). An engine
used without being configured, whose class overrides them without ``super()``, is not seen:
call ``hook_engine`` on it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.utils.crypto import salted_hmac

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.exceptions import CloseConnection
from channelworks.types import Message, Scope

if TYPE_CHECKING:
    from channelworks.consumers.base import AsyncConsumer
    from channelworks.layers.base import BaseChannelLayer

logger = logging.getLogger("channelworks.auth")

#: close code of a socket whose session ended (4000-4999: for applications; 401 as in HTTP)
SESSION_ENDED = 4401
#: the layer message type; its handler is ``WebsocketCore.channelworks_session_ended``
MESSAGE_TYPE = "channelworks.session.ended"
#: where a consumer keeps its ``SessionBinding`` in its scope
SCOPE_KEY = "channelworks.session_binding"
_SALT = "channelworks.session_sockets"


class SessionEnded(CloseConnection):
    """The session (or the password) that authenticated this socket ended: close 4401."""

    code = SESSION_ENDED


def session_group(session_key: str) -> str:
    """The group of the sockets ``session_key`` authenticated."""
    return "channelworks.session." + _digest("session", session_key)


def user_group(user_id: object) -> str:
    """The group of the sockets a session authenticated as the user with id ``user_id``."""
    return "channelworks.user." + _digest("user", str(user_id))


def _digest(kind: str, value: str) -> str:
    # 160 bits, hex: within the 100-character, [A-Za-z0-9._-] rules of group names
    return salted_hmac(f"{_SALT}.{kind}", value, algorithm="sha256").hexdigest()[:40]


def groups_for(scope: Scope) -> tuple[str, ...]:
    """The groups of a socket whose ``scope["user"]`` its ``scope["session"]`` authenticated,
    else ``()``. Never touches the database: a user not loaded yet, or a session whose data
    was not read, gives ``()``."""
    from channelworks.auth import is_resolved

    user = scope.get("user")
    session = scope.get("session")
    if user is None or session is None or not is_resolved(user):
        return ()
    if not user.is_authenticated:
        return ()
    key = session.session_key
    data = getattr(session, "_session_cache", None)  # read already: no query here
    if not key or not isinstance(data, dict):
        return ()
    if data.get(SESSION_KEY) != user._meta.pk.value_to_string(user):
        return ()  # the user came from elsewhere (a token), not from this session
    return (session_group(key), user_group(user.pk))


class SessionBinding:
    """A consumer's membership of its session's and user's groups; kept in its scope.

    Holds the consumer weakly (the scope must not keep it alive). ``bind`` and ``unbind``
    use the consumer's ``join_groups``, so the groups are left when the consumer ends.
    """

    __slots__ = ("_consumer", "groups")

    def __init__(self, consumer: AsyncConsumer) -> None:
        self._consumer = weakref.ref(consumer)
        self.groups: tuple[str, ...] = ()

    async def bind(self, scope: Scope) -> None:
        """Join the groups ``scope`` is authenticated for now, leaving any joined before."""
        groups = groups_for(scope)
        if groups == self.groups:
            return
        await self.unbind()
        consumer = self._consumer()
        if groups and consumer is not None:
            await consumer.join_groups(groups)
            self.groups = groups

    async def unbind(self) -> None:
        """Leave the groups, so the session's end no longer closes this socket."""
        consumer, groups = self._consumer(), self.groups
        self.groups = ()
        if consumer is None or not groups:
            return
        layer, channel = consumer.channel_layer, consumer.channel_name
        consumer.groups_joined = tuple(g for g in consumer.groups_joined if g not in groups)
        if layer is not None and channel is not None:
            for group in groups:
                await layer.group_discard(group, channel)


async def bind_consumer(consumer: AsyncConsumer) -> None:
    """Called as a WebSocket consumer accepts: put a ``SessionBinding`` in its scope (if it
    has a session and the default layer) and join the groups its user was authenticated by."""
    scope = consumer.scope
    if (
        consumer.channel_layer is None
        or consumer.channel_layer_alias != DEFAULT_CHANNEL_LAYER
        or "session" not in scope
    ):
        return
    binding = scope.get(SCOPE_KEY)
    if not isinstance(binding, SessionBinding) or binding._consumer() is not consumer:
        binding = scope[SCOPE_KEY] = SessionBinding(consumer)
    await binding.bind(scope)


def check_ended(scope: Scope, message: Message) -> None:
    """The handler's rule: raise ``SessionEnded`` if ``message`` names one of the socket's
    groups; ignore it (logged at WARNING) otherwise, as a forged one is."""
    binding = scope.get(SCOPE_KEY)
    group = message.get("group")
    if isinstance(binding, SessionBinding) and group in binding.groups:
        raise SessionEnded(reason=str(message.get("reason") or "session ended"))
    logger.warning("Ignored a %r message that names no group of this socket", MESSAGE_TYPE)


async def rebind(scope: Scope) -> None:
    """After ``login()``: the consumer's socket joins the groups of its new session."""
    binding = scope.get(SCOPE_KEY)
    if isinstance(binding, SessionBinding):
        await binding.bind(scope)


async def unbind(scope: Scope) -> None:
    """Before ``login()``/``logout()``: the consumer's own socket leaves its groups."""
    binding = scope.get(SCOPE_KEY)
    if isinstance(binding, SessionBinding):
        await binding.unbind()


# -- the sending side --------------------------------------------------------------------------

#: tasks started on a running loop by a sync flush; kept until done (asyncio keeps weak refs)
_pending: set[asyncio.Task[None]] = set()


def _layer() -> BaseChannelLayer | None:
    from channelworks.layers.registry import get_channel_layer

    return get_channel_layer(DEFAULT_CHANNEL_LAYER)


async def end_groups(groups: tuple[str, ...], reason: str) -> None:
    """Close every socket in ``groups`` (4401), in every process; logs, never raises."""
    layer = _layer()
    if layer is None:
        return
    for group in groups:
        try:
            await layer.group_send(group, {"type": MESSAGE_TYPE, "group": group, "reason": reason})
        except Exception:
            logger.exception(
                "Could not close the sockets of an ended session (%s); they stay open", reason
            )


def end_groups_sync(groups: tuple[str, ...], reason: str) -> None:
    """``end_groups`` from sync code: a view, a worker thread, or code on the event loop
    (there the send is started as a task, since nothing here may block the loop)."""
    if not groups or _layer() is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(end_groups)(groups, reason)
        return
    task = loop.create_task(end_groups(groups, reason))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def _ends_a_login(session: SessionBase) -> bool:
    """Whether ending ``session`` may close sockets: it has a key, and its data (when read)
    holds a user. An unread session is assumed to (reading it would cost a query)."""
    if not session.session_key:
        return False
    data = getattr(session, "_session_cache", None)
    return not isinstance(data, dict) or SESSION_KEY in data


# -- the hooks ---------------------------------------------------------------------------------

_installed = False
#: the methods that end a session's key, and the reason sent for each
_ENDINGS = {
    "flush": "logout",
    "cycle_key": "session key cycled",
    "aflush": "logout",
    "acycle_key": "session key cycled",
}


def install() -> None:
    """Hook the session engine and watch password changes; idempotent.

    ``channelworks``' app config and ``channelworks.auth`` call it: a process that ends
    sessions (a WSGI server too) needs ``"channelworks"`` in ``INSTALLED_APPS``.
    """
    global _installed
    if _installed:
        return
    _installed = True
    from django.test.signals import setting_changed

    hook_engine(SessionBase)
    hook_configured_engine()
    setting_changed.connect(_engine_changed, dispatch_uid="channelworks.session_sockets")


def hook_configured_engine() -> None:
    """Hook the ``SessionStore`` of ``settings.SESSION_ENGINE``; an engine that cannot be
    imported is left to fail where Django uses it (there is no session to end before)."""
    from importlib import import_module

    from django.conf import settings

    try:
        engine = import_module(settings.SESSION_ENGINE).SessionStore
    except (ImportError, AttributeError):
        logger.debug("SESSION_ENGINE %r cannot be imported: not hooked", settings.SESSION_ENGINE)
        return
    hook_engine(engine)


def _engine_changed(setting: str, **kwargs: Any) -> None:
    if setting == "SESSION_ENGINE":
        hook_configured_engine()


def hook_engine(engine: type[SessionBase]) -> None:
    """Wrap ``flush``/``cycle_key`` (and their ``a``-twins) wherever ``engine``'s classes
    define them: engines override them without ``super()`` (``cached_db``'s ``flush``)."""
    for cls in engine.__mro__:
        for name, reason in _ENDINGS.items():
            method = vars(cls).get(name)
            if method is None or getattr(method, "__channelworks_hook__", False):
                continue
            if inspect.iscoroutinefunction(method):
                setattr(cls, name, _async_hook(method, reason))
            else:
                setattr(cls, name, _sync_hook(method, reason))


def watch_passwords() -> None:
    """Connect the password watch to the user model; call once the apps are ready. A project
    without ``django.contrib.auth`` (or whose user model cannot be loaded: Django's own checks
    say why) has no passwords to watch."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ImproperlyConfigured
    from django.db.models.signals import post_save

    if not apps.is_installed("django.contrib.auth"):
        return
    try:
        user_model = get_user_model()
    except ImproperlyConfigured:
        return
    post_save.connect(_password_saved, sender=user_model, dispatch_uid="channelworks.passwords")


def _password_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # AbstractBaseUser.save() keeps the raw password in _password until after post_save: set
    # means set_password() ran, which ends every session of the user (their auth hash changes)
    if created or getattr(instance, "_password", None) is None:
        return
    end_groups_sync((user_group(instance.pk),), "password changed")


def _sync_hook(method: Callable[[SessionBase], None], reason: str) -> Callable[..., None]:
    @functools.wraps(method)
    def hooked(self: SessionBase) -> None:
        if self.__dict__.get(_ENDING):  # an engine's method calling its base's: once
            method(self)
            return
        ends, key = _ends_a_login(self), self.session_key
        self.__dict__[_ENDING] = True
        try:
            method(self)
        finally:
            del self.__dict__[_ENDING]
        if ends and key and key != self.session_key:
            end_groups_sync((session_group(key),), reason)

    hooked.__channelworks_hook__ = True  # type: ignore[attr-defined]
    return hooked


def _async_hook(
    method: Callable[[SessionBase], Awaitable[None]], reason: str
) -> Callable[..., Coroutine[Any, Any, None]]:
    @functools.wraps(method)
    async def hooked(self: SessionBase) -> None:
        if self.__dict__.get(_ENDING):
            await method(self)
            return
        ends, key = _ends_a_login(self), self.session_key
        self.__dict__[_ENDING] = True
        try:
            await method(self)
        finally:
            del self.__dict__[_ENDING]
        if ends and key and key != self.session_key:
            await end_groups((session_group(key),), reason)

    hooked.__channelworks_hook__ = True  # type: ignore[attr-defined]
    return hooked


#: set on a session while one of its hooked methods runs
_ENDING = "_channelworks_ending"


__all__ = [
    "MESSAGE_TYPE",
    "SESSION_ENDED",
    "SessionBinding",
    "SessionEnded",
    "bind_consumer",
    "check_ended",
    "end_groups",
    "end_groups_sync",
    "groups_for",
    "hook_engine",
    "install",
    "rebind",
    "session_group",
    "unbind",
    "user_group",
    "watch_passwords",
]
