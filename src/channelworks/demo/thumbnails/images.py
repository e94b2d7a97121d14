"""Image work, kept apart from the ORM and the layer so it is tested with plain bytes."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

#: the thumbnail's width and height, in pixels
SIZE = (128, 128)
#: the largest image decoded: a few kilobytes of PNG can claim gigabytes of pixels
MAX_PIXELS = 25_000_000


def make_thumbnail(data: bytes, size: tuple[int, int] = SIZE) -> bytes:
    """A PNG of the image ``data`` cropped to fill ``size``; ``OSError`` if it is no image
    or has more than ``MAX_PIXELS`` pixels (checked from the header, before decoding)."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise OSError(f"a {width}x{height} image is over the {MAX_PIXELS:,} pixel limit")
        upright = ImageOps.exif_transpose(image)  # as the camera held it
        thumbnail = ImageOps.fit(upright.convert("RGB"), size)
    out = io.BytesIO()
    thumbnail.save(out, format="PNG")
    return out.getvalue()
