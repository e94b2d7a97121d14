from django import forms

from channelworks.demo.social.models import MAX_TEXT


class TextForm(forms.Form):
    """One text field: a direct message, a post or a comment."""

    text = forms.CharField(max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 2}))
