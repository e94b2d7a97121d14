"""The admin live view: every process's connections and groups, and a button to close one.

Mount it beside the admin (before ``admin.site.urls``)::

    path("admin/channelworks/", include("channelworks.ops.urls")),

Staff only: an anonymous visitor is sent to the admin login, a signed-in user who is not
staff gets 403. Both views are CSRF-protected by themselves, as the admin's own are, so the
close button cannot be pressed from another site even where ``CsrfViewMiddleware`` is off.
The page asks every process through the channel layer (control.py) when it is loaded; the
close button sends the connection's consumer a close with 4403 (final for the clients: they
do not reconnect) and writes an audit line on ``channelworks.ops.audit``.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.exceptions import InvalidChannelName
from channelworks.layers.names import require_channel_name
from channelworks.layers.registry import get_channel_layer
from channelworks.ops import control

#: seconds the page waits for the processes' answers
TIMEOUT = 0.5
#: groups listed at most (the largest first)
MAX_GROUPS = 200
#: what a connection id looks like (connections.py: ``<process>-<n>``); it goes into the
#: audit line, where a line break would forge a second one
CONNECTION_ID = re.compile(r"[0-9A-Za-z_.-]{0,64}")


async def _refusal(request: HttpRequest) -> HttpResponse | None:
    """``None`` for an active staff user; else the redirect to the login, or 403."""
    user = await request.auser()
    if user.is_active and user.is_staff:
        return None
    if user.is_authenticated:
        return HttpResponseForbidden("Staff only.")
    login = reverse("admin:login")
    return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")


@never_cache
@csrf_protect
async def live_view(request: HttpRequest) -> HttpResponse:
    refused = await _refusal(request)
    if refused is not None:
        return refused
    layer = get_channel_layer(DEFAULT_CHANNEL_LAYER)
    snapshots: list[dict[str, Any]] = []
    presence: dict[str, int] = {}
    if layer is not None:
        snapshots = await control.gather(layer, timeout=TIMEOUT)
    groups: dict[str, int] = {}
    connections = []
    now = time.time()
    for snap in snapshots:
        for name, count in snap.get("groups", {}).items():
            groups[name] = groups.get(name, 0) + count
        for row in snap.get("connections", []):
            connections.append(
                {**row, "pid": snap["pid"], "host": snap["host"], "age": now - row["since"]}
            )
    # the largest groups first, at most MAX_GROUPS of them (each asks the layer for presence)
    shown = sorted(groups.items(), key=lambda item: (-item[1], item[0]))[:MAX_GROUPS]
    if layer is not None and "presence" in layer.extensions:
        for name, _ in shown:
            presence[name] = len(await layer.presence(name))
    context = {
        **(await sync_to_async(admin.site.each_context)(request)),
        "title": "Live connections",
        "layer": type(layer).__name__ if layer is not None else None,
        "snapshots": snapshots,
        "connections": sorted(connections, key=lambda row: row["since"]),
        "groups": [
            {"name": name, "members": count, "present": presence.get(name)} for name, count in shown
        ],
        "groups_total": len(groups),
        "close_code": control.ADMIN_CLOSE_CODE,
    }
    return render(request, "channelworks/ops/live.html", context)


@never_cache
@csrf_protect
@require_POST
async def close_view(request: HttpRequest) -> HttpResponse:
    refused = await _refusal(request)
    if refused is not None:
        return refused
    channel_name = request.POST.get("channel_name", "")
    connection_id = request.POST.get("connection_id", "")
    layer = get_channel_layer(DEFAULT_CHANNEL_LAYER)
    if layer is None or not channel_name:
        return HttpResponse("No channel layer, or no connection named.", status=400)
    try:
        require_channel_name(channel_name)
    except InvalidChannelName as exc:
        return HttpResponse(f"Not a channel name: {exc}", status=400, content_type="text/plain")
    if not CONNECTION_ID.fullmatch(connection_id):
        return HttpResponse("Not a connection id.", status=400, content_type="text/plain")
    user = await request.auser()
    await control.close(
        layer,
        channel_name,
        by=str(user.get_username()),
        connection_id=connection_id,
        reason="closed by an administrator",
    )
    await sync_to_async(messages.info)(
        request, f"Connection {connection_id or channel_name} was asked to close (4403)."
    )
    return HttpResponseRedirect(reverse("channelworks-ops:live"))


__all__ = ["close_view", "live_view"]
