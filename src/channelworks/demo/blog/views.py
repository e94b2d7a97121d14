"""The live blog page and plain forms that change it. The views do not talk to the layer:
``signals.py`` does, whatever changed the entry."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from channelworks.demo.blog.forms import EntryForm
from channelworks.demo.blog.models import Entry


def entry_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "blog/entry_list.html", {"entries": Entry.objects.all(), "form": EntryForm()}
    )


@login_required
@require_POST
def entry_create(request: HttpRequest) -> HttpResponse:
    form = EntryForm(request.POST)
    if form.is_valid():
        form.save()
        return redirect("blog:entries")
    return render(request, "blog/entry_list.html", {"entries": Entry.objects.all(), "form": form})


@login_required
def entry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(Entry, pk=pk)
    form = EntryForm(request.POST or None, instance=entry)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("blog:entries")
    return render(request, "blog/entry_form.html", {"entry": entry, "form": form})


@login_required
@require_POST
def entry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Entry, pk=pk).delete()
    return redirect("blog:entries")
