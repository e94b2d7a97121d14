"""The operations page for staff (``/ops/``): live connections, messages per second, the
layer's counters and who is in each room, updating itself.

The page is a template and ``static/demo/operations.js``, which asks ``/ops/data/`` every
1.5 s. That view gathers every server process's snapshot through the channel layer with
``channelworks.ops.control.gather`` (the data of the admin live view and of ``channelworks
status``, docs/operations.md) and reads each room's presence from the layer. Messages per
second are not kept by the server: the page computes them from the frame counters of the
connections it saw in two polls in a row.

Staff only: an anonymous visitor is sent to the login page (the JSON view answers 403), a
signed-in user who is not staff gets 403.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.db import database_sync_to_async
from channelworks.demo.chat.models import Room
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.registry import get_channel_layer
from channelworks.ops.control import gather
from channelworks.topics import group_for

#: seconds the data view waits for the processes' answers (the page asks every 1.5 s)
TIMEOUT = 0.5
#: connections listed per process at most
LIMIT = 200
#: rooms whose presence is shown at most
MAX_ROOMS = 100


async def _is_staff(request: HttpRequest) -> bool:
    user = await request.auser()
    return bool(user.is_active and user.is_staff)


@never_cache
async def page(request: HttpRequest) -> HttpResponse:
    if not await _is_staff(request):
        if not (await request.auser()).is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied("Staff only.")
    return render(request, "demo/operations.html", {"interval": 1500})


@never_cache
async def data(request: HttpRequest) -> JsonResponse:
    if not await _is_staff(request):
        return JsonResponse({"error": "staff only"}, status=403)
    layer = get_channel_layer(DEFAULT_CHANNEL_LAYER)
    snapshots = [] if layer is None else await gather(layer, timeout=TIMEOUT, limit=LIMIT)
    return JsonResponse(
        {
            "now": max((s["now"] for s in snapshots), default=time.time()),
            "layer": type(layer).__name__ if layer is not None else None,
            "processes": len(snapshots),
            "connections_total": sum(s["connections_total"] for s in snapshots),
            "connections": [
                {
                    "id": row["id"],
                    "user": row["username"],
                    "route": row["route"],
                    "path": row["path"],
                    "since": row["since"],
                    "frames_in": row["frames_in"],
                    "frames_out": row["frames_out"],
                    "pid": snap["pid"],
                }
                for snap in snapshots
                for row in snap["connections"]
            ],
            "counters": summed(snap["layers"].get(DEFAULT_CHANNEL_LAYER, {}) for snap in snapshots),
            "rooms": await rooms_present(layer),
        }
    )


def summed(counters: Any) -> dict[str, int]:
    """The counters of several processes added up, name by name."""
    total: dict[str, int] = {}
    for each in counters:
        for name, value in each.items():
            total[name] = total.get(name, 0) + value
    return total


@database_sync_to_async
def _rooms() -> list[tuple[str, str, bool]]:
    return list(Room.objects.values_list("slug", "name", "is_private")[:MAX_ROOMS])


async def rooms_present(layer: BaseChannelLayer | None) -> list[dict[str, Any]]:
    """Every room with who is in it (the presence of its topic ``chat:<slug>``, chat/topics.py):
    each user once, with the number of their tabs."""
    listed = []
    for slug, name, private in await _rooms():
        state = {}
        if layer is not None and "presence" in layer.extensions:
            state = await layer.presence(group_for(f"chat:{slug}"))
        listed.append(
            {
                "slug": slug,
                "name": name,
                "private": private,
                "present": [
                    {"user": key, "tabs": len(metas)} for key, metas in sorted(state.items())
                ],
            }
        )
    return listed


__all__ = ["data", "page"]
