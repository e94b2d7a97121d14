"""Direct messages, posts, comments and likes; each action that concerns someone else
notifies them (``notify``), which their open pages show at once."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from channelworks.demo.requests import AuthenticatedRequest
from channelworks.demo.resume import topic_position
from channelworks.demo.social.forms import TextForm
from channelworks.demo.social.models import Comment, DirectMessage, Like, Notification, Post
from channelworks.demo.social.notify import mark_read, notify
from channelworks.demo.social.topics import post_topic
from channelworks.topics import broadcast

logger = logging.getLogger(__name__)

User = get_user_model()

#: direct messages a conversation page shows; older ones stay in the database
HISTORY = 50


@login_required
def people(request: AuthenticatedRequest) -> HttpResponse:
    others = list(User.objects.exclude(pk=request.user.pk).order_by("username"))
    unread = Notification.objects.filter(
        recipient=request.user, kind=Notification.Kind.MESSAGE, read=False
    )
    senders = Counter(unread.values_list("data__sender", flat=True))
    for person in others:  # unread direct messages per conversation
        person.unread = senders[person.get_username()]  # type: ignore[attr-defined]
    return render(request, "social/people.html", {"people": others})


@login_required
def conversation(request: AuthenticatedRequest, username: str) -> HttpResponse:
    other = get_object_or_404(User, username=username)
    if other.pk == request.user.pk:  # no conversation with oneself: nothing to notify
        return redirect("social:people")
    form = TextForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["text"]
        with transaction.atomic():
            message = DirectMessage.objects.create(sender=request.user, recipient=other, text=text)
            notify(
                other,
                Notification.Kind.MESSAGE,
                f"{request.user.get_username()}: {text}",
                url=reverse("social:conversation", args=[request.user.get_username()]),
                data={"sender": request.user.get_username(), "text": text, "id": message.pk},
            )
        return redirect("social:conversation", username=username)
    # The page shows every message of the conversation: their notifications have been read.
    unread = Notification.objects.filter(
        recipient=request.user, kind=Notification.Kind.MESSAGE, read=False
    )
    read = list(unread.filter(data__sender=other.get_username()).values_list("pk", flat=True))
    if read:
        mark_read(request.user.pk, read)
    latest = DirectMessage.between(request.user, other).order_by("-created", "-id")[:HISTORY]
    context = {"other": other, "dms": reversed(latest), "form": form}
    return render(request, "social/conversation.html", context)


@login_required
def notifications(request: AuthenticatedRequest) -> HttpResponse:
    items = Notification.objects.filter(recipient=request.user)[:100]
    return render(request, "social/notifications.html", {"notifications": items})


@login_required
@require_POST
def notifications_read(request: AuthenticatedRequest) -> HttpResponse:
    mark_read(request.user.pk)
    return redirect("social:notifications")


@login_required
def post_list(request: AuthenticatedRequest) -> HttpResponse:
    form = TextForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        Post.objects.create(author=request.user, text=form.cleaned_data["text"])
        return redirect("social:posts")
    posts = Post.objects.select_related("author").annotate(
        like_count=Count("likes", distinct=True), comment_count=Count("comments", distinct=True)
    )
    return render(request, "social/post_list.html", {"posts": posts, "form": form})


@login_required
def post_detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    position = topic_position(post_topic(post.pk)) if request.method == "GET" else None
    form = TextForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            comment = Comment.objects.create(
                post=post, author=request.user, text=form.cleaned_data["text"]
            )
            event = comment.as_event()
            transaction.on_commit(lambda: tell_post(post, "comment", event), robust=True)
            if post.author != request.user:
                notify(
                    post.author,
                    Notification.Kind.COMMENT,
                    f"{request.user.get_username()} commented on your post: "
                    f"{form.cleaned_data['text']}",
                    url=post.get_absolute_url(),
                    data={"post": post.pk, "comment": comment.as_event()},
                )
        return redirect(post)
    context = {
        "post": post,
        "position": position,
        "comments": post.comments.select_related("author"),
        "likes": post.likes.count(),
        "liked": post.likes.filter(user=request.user).exists(),
        "form": form,
    }
    return render(request, "social/post_detail.html", context)


@login_required
@require_POST
def post_like(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """Like the post, or take the like back. The author hears of a user's like of a post once:
    unliking and liking again notifies nobody."""
    post = get_object_or_404(Post, pk=pk)
    deleted, _ = Like.objects.filter(post=post, user=request.user).delete()
    if not deleted:
        try:
            with transaction.atomic():
                Like.objects.create(post=post, user=request.user)
                if post.author != request.user and not liked_before(post, request.user):
                    notify(
                        post.author,
                        Notification.Kind.LIKE,
                        f"{request.user.get_username()} likes your post",
                        url=post.get_absolute_url(),
                        data={
                            "post": post.pk,
                            "liker": request.user.pk,
                            "likes": post.likes.count(),
                        },
                    )
        except IntegrityError:
            pass  # a double click: the other request liked it already
    tell_post(post, "likes", {"count": post.likes.count()})
    return redirect(post)


def tell_post(post: Post, event: str, payload: dict[str, Any]) -> None:
    """Broadcast ``event`` to the open pages of ``post`` (``topics.PostTopic``); a layer that
    cannot be reached is logged: the change itself is saved."""
    try:
        broadcast(post_topic(post.pk), event, payload)
    except Exception:
        logger.exception("could not tell the pages of post %s of %s", post.pk, event)


def liked_before(post: Post, user: Any) -> bool:
    """Whether ``post``'s author was told of a like by ``user`` already."""
    told = Notification.objects.filter(recipient_id=post.author_id, kind=Notification.Kind.LIKE)
    return told.filter(data__post=post.pk, data__liker=user.pk).exists()
