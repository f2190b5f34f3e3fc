"""MS-COCO (80 object categories) from its annotation JSON files.

- instances files (``instances_train2014.json``, ``instances_val2014.json``): the
  ``images`` (``id``, ``file_name``), ``categories`` (``id``, ``name``) and
  ``annotations`` (``image_id``, ``category_id``) lists; the labels of an image are the
  categories of its instances, columns in the order of the project's MS-COCO label
  vocabulary (COCO category-id order, matched by name);
- captions files (``captions_train2014.json``, ...): ``annotations`` with ``image_id``
  and ``caption``; the captions of an image are joined into its text, encoded as a
  binary bag-of-words over the ``top_k`` most frequent words of the training captions.

Images are looked up in the image folder as ``file_name`` or
``<train2014|val2014>/file_name``. Images without any instance or caption are dropped
(counts go to the manifest).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from gcnretrieval.defaults import DEFAULT_TOP_K
from gcnretrieval.errors import DataError
from gcnretrieval.preparation.common import RawPairs, WriteOptions, write_prepared_dataset
from gcnretrieval.readers import read_json

log = logging.getLogger(__name__)

__all__ = ["prepare_mscoco", "read_mscoco"]


def _load_json(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"COCO annotation file {path} does not exist")
    data = read_json(path, "COCO annotation file (JSON)", "give the COCO annotation file as distributed")
    absent = [k for k in keys if not isinstance(data, dict) or k not in data]
    if absent:
        raise DataError(f"{path} has no {', '.join(absent)}; give a COCO {'instances' if 'categories' in keys else 'captions'} file")
    return data


def _image_file(images: Path, file_name: str) -> Path | None:
    candidates = [images / file_name]
    parts = file_name.split("_")
    if len(parts) >= 3:  # COCO_train2014_000000000009.jpg
        candidates.append(images / parts[1] / file_name)
    return next((c for c in candidates if c.is_file()), None)


def read_mscoco(instances: list[str | Path], captions: list[str | Path], images: str | Path,
                available_only: bool = False) -> RawPairs:
    """Read COCO instances and captions files (see the module docstring) into :class:`RawPairs`."""
    from gcnretrieval.graphs import load_label_vocabulary

    images = Path(images)
    if not instances or not captions:
        raise DataError("give at least one instances file and one captions file")
    label_names = list(load_label_vocabulary("mscoco").label_names)
    column = {name: j for j, name in enumerate(label_names)}
    file_names: dict[int, str] = {}
    labels: dict[int, set[int]] = {}
    sources: dict[str, Path] = {}
    for path in map(Path, instances):
        data = _load_json(path, ("images", "categories", "annotations"))
        sources[path.name] = path
        category = {}
        for entry in data["categories"]:
            name = str(entry["name"])
            if name.lower() not in column:
                from gcnretrieval.errors import did_you_mean

                raise DataError(f"{path.name}: {did_you_mean('COCO category', name, label_names)}")
            category[int(entry["id"])] = column[name.lower()]
        for entry in data["images"]:
            file_names[int(entry["id"])] = str(entry["file_name"])
        for entry in data["annotations"]:
            labels.setdefault(int(entry["image_id"]), set()).add(category[int(entry["category_id"])])
    texts: dict[int, list[str]] = {}
    for path in map(Path, captions):
        data = _load_json(path, ("annotations",))
        sources[path.name] = path
        for entry in data["annotations"]:
            texts.setdefault(int(entry["image_id"]), []).append(str(entry["caption"]).strip())
    ids = sorted(file_names)
    kept = [i for i in ids if labels.get(i) and any(texts.get(i, []))]
    files, rows, missing = [], [], []
    for image_id in kept:
        path = _image_file(images, file_names[image_id])
        if path is None:
            missing.append(file_names[image_id])
        else:
            rows.append(image_id)
            files.append(path)
    if missing and not available_only:
        raise DataError(f"{len(missing)} of {len(kept)} images are missing from {images} (first: {missing[0]}); "
                        "pass --available-only to keep only the pairs whose image exists")
    if not rows:
        raise DataError(f"no usable image in {images}; check the image folder and the annotation files")
    matrix = np.zeros((len(rows), len(label_names)), dtype=np.float32)
    for r, image_id in enumerate(rows):
        matrix[r, sorted(labels[image_id])] = 1.0
    return RawPairs(
        image_files=files,
        image_names=[f.relative_to(images).as_posix() for f in files],
        texts=[" ".join(t for t in texts[i] if t) for i in rows],
        labels=matrix,
        label_names=label_names,
        source_files=sources,
        notes={"source_images": len(ids), "dropped_without_label_or_caption": len(ids) - len(kept),
               "skipped_missing_images": len(missing)},
    )


def prepare_mscoco(
    instances: list[str | Path],
    captions: list[str | Path],
    images: str | Path,
    output: str | Path,
    *,
    top_k: int = DEFAULT_TOP_K,
    available_only: bool = False,
    name: str = "mscoco",
    **options: Unpack[WriteOptions],
) -> Path:
    """Build an MS-COCO dataset folder: image features, caption bag-of-words (``top_k`` words), 80 labels.

    See :func:`read_mscoco` for the inputs and
    :func:`~gcnretrieval.preparation.write_prepared_dataset` for the rest.
    """
    from gcnretrieval.features import BagOfWords

    pairs = read_mscoco(instances, captions, images, available_only)
    return write_prepared_dataset(
        name, pairs, output, BagOfWords(top_k=top_k),
        vocabulary_source=f"top {top_k} words of the training captions (English stop words removed)", **options,
    )
