from django import forms

from channelworks.demo.blog.models import Entry


class EntryForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Entry
        fields = ("title", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 3})}  # noqa: RUF012
