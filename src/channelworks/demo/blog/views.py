"""The live blog page and plain forms that change it. The views do not talk to the layer:
``signals.py`` does, whatever changed the entry.

Everyone reads the blog; only users with the model's permissions write it (as in the admin):
entries have no author, so "logged in" would let any user rewrite or delete any entry."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from channelworks.demo.blog.forms import EntryForm
from channelworks.demo.blog.models import Entry
from channelworks.demo.blog.topics import TOPIC
from channelworks.demo.resume import topic_position


def entry_list(request: HttpRequest, form: EntryForm | None = None) -> HttpResponse:
    # Where the topic's log stands, read before the entries: the page joins from there.
    position = topic_position(TOPIC)
    context = {"entries": list(Entry.objects.all()), "form": form or EntryForm()}
    context["position"] = position
    return render(request, "blog/entry_list.html", context)


@permission_required("blog.add_entry", raise_exception=True)
@require_POST
def entry_create(request: HttpRequest) -> HttpResponse:
    form = EntryForm(request.POST)
    if form.is_valid():
        form.save()
        return redirect("blog:entries")
    return entry_list(request, form)


@permission_required("blog.change_entry", raise_exception=True)
def entry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(Entry, pk=pk)
    form = EntryForm(request.POST or None, instance=entry)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("blog:entries")
    return render(request, "blog/entry_form.html", {"entry": entry, "form": form})


@permission_required("blog.delete_entry", raise_exception=True)
@require_POST
def entry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Entry, pk=pk).delete()
    return redirect("blog:entries")
