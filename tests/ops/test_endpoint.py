"""Who may read /metrics: nobody by default, then a token, staff, or anyone, as set."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, override_settings

from channelworks.metrics import Access, MetricsApp
from channelworks.testing import HttpCommunicator

TOKEN = "a-long-enough-secret-token"
METRICS = "/admin/channelworks/metrics"


async def get(app: MetricsApp, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return await HttpCommunicator(app, "GET", "/metrics", headers=headers or []).get_response()


async def test_asgi_app_is_off_without_the_setting() -> None:
    assert (await get(MetricsApp()))["status"] == 404


@override_settings(CHANNELWORKS_METRICS={"token": TOKEN})
async def test_asgi_app_wants_the_bearer_token() -> None:
    assert (await get(MetricsApp()))["status"] == 401
    wrong = await get(MetricsApp(), [(b"authorization", b"Bearer not-the-token-at-all")])
    assert wrong["status"] == 401
    right = await get(MetricsApp(), [(b"authorization", f"Bearer {TOKEN}".encode())])
    assert right["status"] == 200
    assert b"channelworks_connections_accepted_total" in right["body"] or b"# HELP" in right["body"]
    assert dict(right["headers"])[b"content-type"].startswith(b"text/plain; version=")


async def test_asgi_app_options_without_settings() -> None:
    assert (await get(MetricsApp(public=True)))["status"] == 200
    bearer = [(b"authorization", f"Bearer {TOKEN}".encode())]
    assert (await get(MetricsApp(token=TOKEN), bearer))["status"] == 200


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="16"):
        Access.from_setting({"token": "short"})
    with pytest.raises(ValueError, match="unknown"):
        Access.from_setting({"tokn": TOKEN})


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.ops.urls")
async def test_django_view_off_by_default_then_staff_or_token() -> None:
    assert (await AsyncClient().get(METRICS)).status_code == 404
    with override_settings(CHANNELWORKS_METRICS={"staff": True, "token": TOKEN}):
        anonymous = await AsyncClient().get(METRICS)
        assert anonymous.status_code == 401
        assert anonymous["WWW-Authenticate"].startswith("Bearer")
        visitor = AsyncClient()
        await visitor.aforce_login(await User.objects.acreate_user("visitor"))
        assert (await visitor.get(METRICS)).status_code == 403
        staff = AsyncClient()
        await staff.aforce_login(await User.objects.acreate_user("boss", is_staff=True))
        page = await staff.get(METRICS)
        assert page.status_code == 200
        assert b"# TYPE channelworks_connections_open gauge" in page.content
        token = await AsyncClient().get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
        assert token.status_code == 200


@override_settings(CHANNELWORKS_METRICS={"token": TOKEN})
async def test_hostile_authorization_headers_are_refused_not_crashed() -> None:
    # bytes over 0x7f in the header (any client can send them) reached hmac.compare_digest
    # as non-ASCII text, which raises TypeError: a 500 for every such scrape
    for header in (b"Bearer \xe9t\xe9", b"Bearer " + "é".encode() * 20, b"\xff\xfe", b"Bearer"):
        assert (await get(MetricsApp(), [(b"authorization", header)]))["status"] == 401
    # a token in the query string is not a way in (it would end up in access logs)
    scrape = HttpCommunicator(MetricsApp(), "GET", f"/metrics?token={TOKEN}")
    assert (await scrape.get_response())["status"] == 401


async def test_a_token_with_non_ascii_characters_works() -> None:
    token = "clé-secrète-de-prométhée"
    app = MetricsApp(token=token)
    assert (await get(app, [(b"authorization", f"Bearer {token}".encode())]))["status"] == 200
    assert (await get(app, [(b"authorization", f"Bearer {TOKEN}".encode())]))["status"] == 401


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.ops.urls", CHANNELWORKS_METRICS={"token": TOKEN})
async def test_django_view_refuses_a_non_ascii_authorization() -> None:
    page = await AsyncClient().get(METRICS, headers={"Authorization": "Bearer été"})
    assert page.status_code == 401
