"""Resumable, chunked feature extraction over a list of image files.

:func:`extract_image_features` runs any :class:`ImageFeaturizer` over image files in
chunks. With a ``cache_dir``, every finished chunk is saved as
``chunk-00000.npy``, ``chunk-00001.npy``, ... next to ``chunks.json`` (the featurizer's
identity, the chunk size and a hash of the file list); a later call with the same
inputs skips the finished chunks, so an interrupted extraction resumes where it
stopped. A cache made for other inputs is cleared first.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from gcnretrieval.features.images import open_image
from gcnretrieval.readers import load_npy
from gcnretrieval.files import atomic_path

log = logging.getLogger(__name__)

__all__ = ["ImageFeaturizer", "extract_image_features"]


class ImageFeaturizer(Protocol):
    """What :func:`extract_image_features` needs from a featurizer."""

    name: str
    dim: int

    def identity(self) -> dict[str, Any]:
        """JSON description (name, parameters, weights) recorded in manifests and caches."""

    def transform(self, images: list) -> np.ndarray:
        """Features of a batch of RGB PIL images, ``(len(images), dim)`` float32."""


def _list_hash(paths: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _prepare_cache(cache_dir: Path, stamp: dict[str, Any]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp_file = cache_dir / "chunks.json"
    if stamp_file.is_file():
        try:
            previous = json.loads(stamp_file.read_text(encoding="utf-8"))
        except ValueError:
            previous = None
        if previous == stamp:
            return
        log.warning("feature cache %s was made for other inputs; starting it afresh", cache_dir)
    for old in cache_dir.glob("chunk-*.npy"):
        old.unlink()
    stamp_file.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")


def extract_image_features(
    paths: Sequence[str | Path],
    featurizer: ImageFeaturizer,
    *,
    batch_size: int = 32,
    chunk_size: int = 1024,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """Features of every image in ``paths``, in order.

    Args:
        paths: image files.
        featurizer: e.g. :class:`~gcnretrieval.features.VGG19Featurizer` or
            :class:`~gcnretrieval.features.HistogramFeaturizer`.
        batch_size: images per call of ``featurizer.transform`` (default ``32``).
        chunk_size: images per cached chunk (default ``1024``).
        cache_dir: folder of resumable chunk files (default ``None``: keep in memory).
        progress: show a progress bar on stderr; ``None`` (default) shows it only when
            stderr is a terminal.

    Returns:
        ``(len(paths), featurizer.dim)`` float32.

    Raises:
        DataError: a file is missing or not an image (the message names it).
    """
    names = [str(p) for p in paths]
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be at least 1")
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        stamp = {"featurizer": featurizer.identity(), "chunk_size": chunk_size,
                 "num_images": len(names), "paths_sha256": _list_hash(names)}
        _prepare_cache(cache, stamp)
    chunks = []
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(names), desc=f"{featurizer.name} features", unit="image", disable=not show) as bar:
        for index, start in enumerate(range(0, len(names), chunk_size)):
            chunk_paths = names[start : start + chunk_size]
            chunk_file = cache / f"chunk-{index:05d}.npy" if cache is not None else None
            if chunk_file is not None and chunk_file.is_file():
                chunks.append(load_npy(chunk_file, kind="feature chunk",
                                       fix="delete it and run again: only its images are extracted again"))
                bar.update(len(chunk_paths))
                continue
            rows = []
            for begin in range(0, len(chunk_paths), batch_size):
                batch = [open_image(p) for p in chunk_paths[begin : begin + batch_size]]
                rows.append(np.asarray(featurizer.transform(batch), dtype=np.float32))
                bar.update(len(batch))
            chunk = np.concatenate(rows, axis=0) if rows else np.zeros((0, featurizer.dim), np.float32)
            if chunk_file is not None:
                with atomic_path(chunk_file) as tmp:
                    np.save(tmp, chunk)
            chunks.append(chunk)
    if not chunks:
        return np.zeros((0, featurizer.dim), dtype=np.float32)
    return np.concatenate(chunks, axis=0)
