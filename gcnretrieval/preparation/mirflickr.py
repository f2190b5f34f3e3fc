"""MIRFlickr-25K in the cleaned 20,015-pair layout.

The annotation folder holds four text files, one line per pair in the same order:

- ``all_imgs.txt``: the image of each pair, ``mirflickr/imN.jpg``;
- ``all_tags.txt``: its comma-separated Flickr tags;
- ``all_labels.txt``: 24 space-separated 0/1 labels, columns in the order of the
  project's MIRFlickr label vocabulary (``animals`` ... ``water``);
- ``TagList1386.txt``: the 1,386-tag vocabulary of the text features.

Images are looked up in the image folder by file name (``imN.jpg``), or by the path as
written in ``all_imgs.txt``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Unpack

import numpy as np

from gcnretrieval.errors import DataError
from gcnretrieval.preparation.common import RawPairs, WriteOptions, write_prepared_dataset
from gcnretrieval.readers import read_text

log = logging.getLogger(__name__)

__all__ = ["prepare_mirflickr", "read_mirflickr"]

FILES = ("all_imgs.txt", "all_tags.txt", "all_labels.txt", "TagList1386.txt")


def _lines(path: Path) -> list[str]:
    text = read_text(path, "MIRFlickr annotation file", "give the annotation folder as distributed")
    return [line.rstrip("\r") for line in text.splitlines()]


def resolve_images(images: Path, entries: list[str], available_only: bool) -> tuple[list[int], list[Path]]:
    """Rows whose image exists and their files; missing ones are an error unless ``available_only``."""
    keep, files, missing = [], [], []
    for row, entry in enumerate(entries):
        candidates = [images / Path(entry).name, images / entry]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(entry)
        else:
            keep.append(row)
            files.append(hit)
    if missing and not available_only:
        raise DataError(f"{len(missing)} of {len(entries)} images are missing from {images} (first: {missing[0]}); "
                        "pass --available-only to keep only the pairs whose image exists")
    if not keep:
        raise DataError(f"none of the {len(entries)} images is in {images}; check the image folder")
    if missing:
        log.info("skipping %d of %d pairs whose image is not in %s", len(missing), len(entries), images)
    return keep, files


def read_mirflickr(annotations: str | Path, images: str | Path, available_only: bool = False) -> RawPairs:
    """Read the cleaned MIRFlickr layout (see the module docstring) into :class:`RawPairs`.

    Args:
        annotations: folder with ``all_imgs.txt``, ``all_tags.txt``, ``all_labels.txt``,
            ``TagList1386.txt``.
        images: folder of the ``imN.jpg`` files.
        available_only: skip the pairs whose image file is absent (counted in the
            manifest) instead of failing (default ``False``).
    """
    from gcnretrieval.graphs import load_label_vocabulary

    annotations, images = Path(annotations), Path(images)
    absent = [name for name in FILES if not (annotations / name).is_file()]
    if absent:
        raise DataError(f"{annotations} lacks {', '.join(absent)}; give the folder of the cleaned MIRFlickr annotation files")
    if not images.is_dir():
        raise DataError(f"image folder {images} does not exist; give the folder of the imN.jpg files")
    entries = [e.strip() for e in _lines(annotations / "all_imgs.txt")]
    tags = _lines(annotations / "all_tags.txt")
    label_rows = _lines(annotations / "all_labels.txt")
    if not len(entries) == len(tags) == len(label_rows):
        raise DataError(f"all_imgs.txt, all_tags.txt and all_labels.txt have {len(entries)}, {len(tags)} and "
                        f"{len(label_rows)} lines; they must describe the same pairs line by line")
    label_names = list(load_label_vocabulary("mirflickr").label_names)
    labels = np.zeros((len(label_rows), len(label_names)), dtype=np.float32)
    for row, line in enumerate(label_rows):
        values = line.split()
        if len(values) != len(label_names) or any(v not in ("0", "1") for v in values):
            raise DataError(f"all_labels.txt line {row + 1} must hold {len(label_names)} values 0 or 1, got {line!r}")
        labels[row] = [float(v) for v in values]
        if not labels[row].any():
            raise DataError(f"all_labels.txt line {row + 1} has no label; every pair needs at least one")
    keep, files = resolve_images(images, entries, available_only)
    return RawPairs(
        image_files=files,
        image_names=[f.relative_to(images).as_posix() for f in files],
        texts=[tags[i] for i in keep],
        labels=labels[keep],
        label_names=label_names,
        source_files={name: annotations / name for name in FILES},
        notes={"source_pairs": len(entries), "skipped_missing_images": len(entries) - len(keep)},
    )


def prepare_mirflickr(
    annotations: str | Path,
    images: str | Path,
    output: str | Path,
    *,
    available_only: bool = False,
    name: str = "mirflickr",
    **options: Unpack[WriteOptions],
) -> Path:
    """Build a MIRFlickr dataset folder: image features, 1,386-d tag bag-of-words, 24 labels.

    See :func:`read_mirflickr` for the inputs and
    :func:`~gcnretrieval.preparation.write_prepared_dataset` for the other options and
    the output folder. Returns the output folder.
    """
    from gcnretrieval.features import BagOfWords, read_vocabulary

    pairs = read_mirflickr(annotations, images, available_only)
    vocabulary = read_vocabulary(Path(annotations) / "TagList1386.txt")
    return write_prepared_dataset(
        name, pairs, output, BagOfWords(vocabulary, separator=","),
        vocabulary_source="TagList1386.txt (MIRFlickr tag list, comma-separated tags)", **options,
    )
