from __future__ import annotations

from django import forms
from django.utils.text import slugify

from channelworks.demo.chat.models import Message, Room


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
        return name

    def save(self, commit: bool = True) -> Room:
        self.instance.slug = slugify(self.cleaned_data["name"])
        room: Room = super().save(commit)
        return room


class MessageForm(forms.Form):
    """What a chat socket accepts: the consumer validates each frame with it."""

    text = forms.CharField(max_length=Message.MAX_LENGTH)
