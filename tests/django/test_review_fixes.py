"""Regression tests for review findings in the Django integration."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, override_settings

from channelworks.auth import AuthMiddlewareStack, get_user, login
from channelworks.consumers import AsyncWebsocketConsumer
from channelworks.routing import get_default_application
from channelworks.testing import WebsocketCommunicator
from tests.django.support import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


class Relogin(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await login(self.scope, self.scope["user"])  # re-log the current user in
        await self.scope["session"].asave()
        user = await get_user(self.scope)
        await self.send(text_data=user.get_username())


async def test_login_with_the_scopes_own_user_does_not_wrap_itself() -> None:
    user = await User.objects.acreate_user("carol", password="pw")
    client = AsyncClient()
    assert await client.alogin(username="carol", password="pw")
    key = client.cookies["sessionid"].value
    comm = WebsocketCommunicator(
        AuthMiddlewareStack(Relogin.as_asgi()), "/", headers=[session_cookie(key)]
    )
    assert (await comm.connect())[0]
    assert await comm.receive_from() == user.get_username()
    await comm.disconnect()


@override_settings(ASGI_APPLICATION="tests.django.broken_asgi.application")
def test_any_error_in_the_asgi_module_is_reported_as_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="RuntimeError: broken on purpose"):
        get_default_application()
