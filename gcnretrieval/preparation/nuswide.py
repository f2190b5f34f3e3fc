"""NUS-WIDE (21 most frequent concepts), from the files of its distribution.

The root folder holds (looked up at these paths, or directly in the root):

- ``ImageList/Imagelist.txt``: one image per line, e.g.
  ``C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg``; the last two path parts
  (``actor/0001_2124494179.jpg``) are looked up in the image folder;
- ``NUS_WID_Tags/All_Tags.txt``: per image, in the same order, the photo id followed by
  its tags, separated by whitespace;
- ``NUS_WID_Tags/TagList1k.txt``: the 1,000-tag vocabulary of the text features;
- ``Groundtruth/AllLabels/Labels_<concept>.txt``: one 0/1 line per image, for each of the
  21 concepts of the project's NUS-WIDE label vocabulary (``sky`` ... ``mountain``).

Pairs without any of the 21 concepts or without any vocabulary tag are dropped (the
usual cleaning; counts go to the manifest).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Unpack

import numpy as np

from gcnretrieval.errors import DataError
from gcnretrieval.preparation.common import RawPairs, WriteOptions, write_prepared_dataset
from gcnretrieval.preparation.mirflickr import resolve_images

log = logging.getLogger(__name__)

__all__ = ["prepare_nuswide", "read_nuswide"]


def _find(root: Path, *candidates: str) -> Path:
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    raise DataError(f"{root} lacks {candidates[0]}; give the root folder of the NUS-WIDE distribution")


def _lines(path: Path) -> list[str]:
    return [line.rstrip("\r") for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]


def read_nuswide(root: str | Path, images: str | Path, available_only: bool = False) -> tuple[RawPairs, list[str]]:
    """Read the NUS-WIDE files (see the module docstring); returns the pairs and the tag vocabulary."""
    from gcnretrieval.features import BagOfWords, read_vocabulary

    root, images = Path(root), Path(images)
    image_list = _find(root, "ImageList/Imagelist.txt", "Imagelist.txt")
    tags_file = _find(root, "NUS_WID_Tags/All_Tags.txt", "All_Tags.txt")
    vocab_file = _find(root, "NUS_WID_Tags/TagList1k.txt", "TagList1k.txt")
    from gcnretrieval.graphs import load_label_vocabulary

    label_names = list(load_label_vocabulary("nuswide").label_names)
    entries = ["/".join(line.strip().replace("\\", "/").split("/")[-2:]) for line in _lines(image_list) if line.strip()]
    tag_lines = [line for line in _lines(tags_file) if line.strip()]
    if len(tag_lines) != len(entries):
        raise DataError(f"{tags_file.name} has {len(tag_lines)} lines but {image_list.name} lists {len(entries)} images; "
                        "they must describe the same images line by line")
    texts = [" ".join(line.split()[1:]) for line in tag_lines]
    labels = np.zeros((len(entries), len(label_names)), dtype=np.float32)
    sources = {"Imagelist.txt": image_list, "All_Tags.txt": tags_file, "TagList1k.txt": vocab_file}
    for j, concept in enumerate(label_names):
        path = _find(root, f"Groundtruth/AllLabels/Labels_{concept}.txt", f"Labels_{concept}.txt")
        values = [line.strip() for line in _lines(path) if line.strip()]
        if len(values) != len(entries) or any(v not in ("0", "1") for v in values):
            raise DataError(f"{path.name} must hold one 0/1 line per image ({len(entries)} lines)")
        labels[:, j] = [float(v) for v in values]
        sources[path.name] = path
    vocabulary = read_vocabulary(vocab_file)
    has_tag = BagOfWords(vocabulary, separator=None).transform(texts).any(axis=1)
    has_label = labels.any(axis=1)
    candidates = np.flatnonzero(has_tag & has_label)
    keep, files = resolve_images(images, [entries[i] for i in candidates], available_only)
    rows = candidates[keep]
    pairs = RawPairs(
        image_files=files,
        image_names=[f.relative_to(images).as_posix() for f in files],
        texts=[texts[i] for i in rows],
        labels=labels[rows],
        label_names=label_names,
        source_files=sources,
        notes={"source_pairs": len(entries), "dropped_without_label": int((~has_label).sum()),
               "dropped_without_tag": int((has_label & ~has_tag).sum()),
               "skipped_missing_images": len(candidates) - len(rows)},
    )
    return pairs, vocabulary


def prepare_nuswide(
    root: str | Path,
    images: str | Path,
    output: str | Path,
    *,
    available_only: bool = False,
    name: str = "nuswide",
    **options: Unpack[WriteOptions],
) -> Path:
    """Build a NUS-WIDE dataset folder: image features, 1,000-d tag bag-of-words, 21 labels.

    See :func:`read_nuswide` for the inputs and
    :func:`~gcnretrieval.preparation.write_prepared_dataset` for the rest.
    """
    from gcnretrieval.features import BagOfWords

    pairs, vocabulary = read_nuswide(root, images, available_only)
    return write_prepared_dataset(
        name, pairs, output, BagOfWords(vocabulary, separator=None),
        vocabulary_source="TagList1k.txt (NUS-WIDE tag list, whitespace-separated tags)", **options,
    )
