"""Opening image files with one clear error for files that are not images."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from gcnretrieval.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "open_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def open_image(path: str | Path) -> Image.Image:
    """Read ``path`` fully and return it as an RGB :class:`PIL.Image.Image`.

    Raises:
        DataError: the file does not exist or is not a readable image (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; check the image folder")
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{path} is not a readable image ({type(err).__name__}); remove it or replace it with a JPEG/PNG file") from None
