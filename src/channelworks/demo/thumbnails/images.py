"""Image work, kept apart from the ORM and the layer so it is tested with plain bytes."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

#: the thumbnail's width and height, in pixels
SIZE = (128, 128)


def make_thumbnail(data: bytes, size: tuple[int, int] = SIZE) -> bytes:
    """A PNG of the image ``data`` cropped to fill ``size``; ``OSError`` if it is no image."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)  # as the camera held it
        thumbnail = ImageOps.fit(upright.convert("RGB"), size)
    out = io.BytesIO()
    thumbnail.save(out, format="PNG")
    return out.getvalue()
