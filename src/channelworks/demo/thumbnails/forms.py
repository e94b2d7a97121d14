from __future__ import annotations

from django import forms
from django.core.files.uploadedfile import UploadedFile

from channelworks.demo.thumbnails.models import Avatar

#: the largest avatar accepted, in bytes
MAX_BYTES = 5 * 1024 * 1024


class AvatarForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Avatar
        fields = ("image",)

    def clean_image(self) -> UploadedFile[bytes]:
        image: UploadedFile[bytes] = self.cleaned_data["image"]
        if image.size is not None and image.size > MAX_BYTES:
            raise forms.ValidationError(f"Choose an image of at most {MAX_BYTES // 2**20} MB.")
        return image
