"""Opening image files with one clear error for files that are not images."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from gcnretrieval.errors import DataError
from gcnretrieval.readers import unreadable

__all__ = ["IMAGE_SUFFIXES", "open_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def open_image(path: str | Path, fix: str = "remove it or replace it with a JPEG/PNG file") -> Image.Image:
    """Read ``path`` fully and return it as an RGB :class:`PIL.Image.Image`.

    Args:
        path: the image file.
        fix: what the error message tells the user to do (default ``"remove it or replace it
            with a JPEG/PNG file"``).

    Raises:
        DataError: the file does not exist, is not an image or is damaged (a truncated copy);
            the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; check the image folder")
    with unreadable(path, "image", fix), Image.open(path) as image:
        image.load()
        return image.convert("RGB")
