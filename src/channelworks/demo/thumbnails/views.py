"""The avatar page. The upload is saved here; the thumbnail is made elsewhere, by the worker
reading ``THUMBNAIL_CHANNEL``, and the user hears of it through a notification."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth.decorators import login_required
from django.core.files.storage import Storage
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render

from channelworks.demo.requests import AuthenticatedRequest
from channelworks.demo.thumbnails.consumers import THUMBNAIL_CHANNEL
from channelworks.demo.thumbnails.forms import AvatarForm
from channelworks.demo.thumbnails.models import Avatar
from channelworks.layers import get_channel_layer


def request_thumbnail(avatar: Avatar) -> None:
    """Ask the worker for ``avatar``'s thumbnail once the upload is committed."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "thumbnail.generate", "avatar_id": avatar.pk}
    transaction.on_commit(lambda: async_to_sync(layer.send)(THUMBNAIL_CHANNEL, message))


def forget_file(storage: Storage, name: str) -> None:
    """Delete file ``name`` once the transaction commits (a rolled-back upload keeps it); a
    worker still reading it notices (consumers.py)."""
    transaction.on_commit(lambda: storage.delete(name), robust=True)


@login_required
def avatar(request: AuthenticatedRequest) -> HttpResponse:
    current = Avatar.objects.filter(user=request.user).first()
    replaced = current.image.name if current is not None else ""
    form = AvatarForm(request.POST or None, request.FILES or None, instance=current)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            uploaded = form.save(commit=False)
            uploaded.user = request.user
            if uploaded.thumbnail:
                uploaded.thumbnail.delete(save=False)  # stale: it shows the old image
            uploaded.save()
            request_thumbnail(uploaded)
            if replaced and replaced != uploaded.image.name:  # the old upload's file goes too
                forget_file(uploaded.image.storage, replaced)
        return redirect("thumbnails:avatar")
    return render(request, "thumbnails/avatar.html", {"avatar": current, "form": form})
