from __future__ import annotations

from django import forms
from django.utils.text import slugify

from channelworks.demo.chat.models import Message, Room
from channelworks.demo.resume import topic_holds_messages


def check_slug_unused(slug: str) -> None:
    """Refuse a room address whose topic's log still holds messages: they are those of a
    room deleted or moved away (a private one, maybe), and a join of the new room's topic
    with an old position would replay them to its members. The log forgets them after its
    ``ttl`` (``topics.RoomTopic.history``, an hour)."""
    from channelworks.demo.chat.topics import room_topic  # topics.py imports this module

    held = topic_holds_messages(room_topic(slug))
    if held is None:
        raise forms.ValidationError("Cannot check this name now (the chat is down); try again.")
    if held:
        raise forms.ValidationError(
            "A room that was deleted or renamed less than an hour ago used this name: "
            "choose another one."
        )


class RoomForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Room
        fields = ("name", "is_private")
        widgets = {"name": forms.TextInput(attrs={"placeholder": "Room name"})}  # noqa: RUF012

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        slug = slugify(name)
        if not slug:
            raise forms.ValidationError("Use at least one letter or digit.")
        if Room.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A room with this name exists already.")
        check_slug_unused(slug)
        return name

    def save(self, commit: bool = True) -> Room:
        self.instance.slug = slugify(self.cleaned_data["name"])
        room: Room = super().save(commit)
        return room


class RoomAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """The admin's room form: a new room, or a room moved to another address, may not take
    an address whose log holds another room's messages (``check_slug_unused``)."""

    class Meta:
        model = Room
        fields = "__all__"

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if slug != self.instance.slug or self.instance.pk is None:
            check_slug_unused(slug)
        return slug


class MessageForm(forms.Form):
    """What a chat socket accepts: the consumer validates each frame with it."""

    text = forms.CharField(max_length=Message.MAX_LENGTH)
