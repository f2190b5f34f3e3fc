"""Read and write paired image-text datasets in three on-disk formats.

``mat``
    The layout the community distributes pre-extracted features in (the DSCMR and
    GNN4CMR/I-GNN loaders read it): a directory with ``train_img.mat``, ``test_img.mat``,
    ``train_txt.mat``, ``test_txt.mat``, ``train_lab.mat``, ``test_lab.mat``, each holding
    one variable named like the file (``train_img.mat['train_img']``), rows = pairs.
    Optional ``val_img.mat``, ``val_txt.mat``, ``val_lab.mat``. MATLAB v5 files are read
    with :func:`scipy.io.loadmat`, v7.3 files (HDF5) with h5py, transposed back to
    MATLAB's row order. Sparse matrices are densified. When ``<split>_lab.mat`` is absent,
    ``<split>_img_lab.mat`` is used (the Pascal Sentence distribution names it so).
    A label file with a single column holds class ids (single-label data such as Pascal
    Sentence); it is converted to one-hot columns, one per distinct id over all splits in
    increasing order, named ``class<id>``.
``npz``
    One ``.npz`` archive with arrays ``img_train, txt_train, lab_train, img_test,
    txt_test, lab_test`` (optional ``img_val, txt_val, lab_val`` and ``label_names``),
    read with ``allow_pickle=False``.
``npy``
    A directory of ``.npy`` files named like the ``npz`` keys (``img_train.npy``, ...),
    opened memory-mapped (``mmap_mode="r"``): the recommended format for large datasets.

:func:`load_dataset` detects the format; :func:`save_npz` and :func:`save_npy_dir` write
the last two atomically (to a temporary name, then renamed).
"""
from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import scipy.sparse

from gcnretrieval.data.container import CrossModalDataset, Split
from gcnretrieval.errors import DataError
from gcnretrieval.files import atomic_directory, atomic_path
from gcnretrieval.readers import load_npy, load_npz as _read_npz, unreadable

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MODALITIES = ("img", "txt", "lab")
_FIELDS = {"img": "image", "txt": "text", "lab": "labels"}
# column blocks of about 64 MiB when reading MATLAB v7.3 arrays
_BLOCK_BYTES = 64 * 2**20

__all__ = [
    "expected_files",
    "load_dataset",
    "load_mat_dir",
    "load_npy_dir",
    "load_npz",
    "read_mat_array",
    "save_npy_dir",
    "save_npz",
]


def expected_files(fmt: str) -> list[str]:
    """File names (``fmt="mat"`` or ``"npy"``) or array keys (``"npz"``) a dataset needs."""
    if fmt == "mat":
        return [f"{split}_{mod}.mat" for split in ("train", "test") for mod in MODALITIES]
    if fmt == "npy":
        return [f"{mod}_{split}.npy" for split in ("train", "test") for mod in MODALITIES]
    if fmt == "npz":
        return [f"{mod}_{split}" for split in ("train", "test") for mod in MODALITIES]
    raise ValueError(f"unknown format {fmt!r}")


def _layouts_hint() -> str:
    return (
        f"expected a directory with {', '.join(expected_files('mat'))} (MATLAB layout), "
        f"a directory with {', '.join(expected_files('npy'))}, "
        f"or a .npz file with arrays {', '.join(expected_files('npz'))}"
    )


# --- MATLAB ---------------------------------------------------------------------------


def read_mat_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """Read one 2-D array from a MATLAB ``.mat`` file (v5 or v7.3).

    Args:
        path: the ``.mat`` file.
        key: variable name (default: the file stem). When the file lacks it but holds
            exactly one variable, that variable is used.

    Returns:
        The array in MATLAB's row order (rows = samples); sparse matrices are densified,
        vectors become one column. The dtype is the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MATLAB file {path} does not exist; check the dataset directory")
    key = key or path.stem
    with unreadable(path, "MATLAB .mat file", "save it again with MATLAB or scipy.io.savemat"):
        array = _read_mat73(path, key) if h5py.is_hdf5(path) else _read_mat5(path, key)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"variable '{key}' in {path} has shape {array.shape}; expected a 2-D matrix")
    return array


def _pick_key(path: Path, key: str, names: list[str]) -> str:
    if key in names:
        return key
    if len(names) == 1:
        log.debug("%s has no variable %r; using its only variable %r", path, key, names[0])
        return names[0]
    raise DataError(
        f"{path} has no variable '{key}' (found: {', '.join(names) or 'none'}); "
        f"save the matrix under the name '{key}'"
    )


def _read_mat5(path: Path, key: str) -> np.ndarray:
    names = [name for name, _, _ in scipy.io.whosmat(str(path))]
    key = _pick_key(path, key, names)
    value = scipy.io.loadmat(str(path), variable_names=[key])[key]
    if scipy.sparse.issparse(value):
        value = value.toarray()
    return np.asarray(value)


def _read_mat73(path: Path, key: str) -> np.ndarray:
    with h5py.File(path, "r") as handle:
        names = [name for name in handle.keys() if not name.startswith("#")]
        key = _pick_key(path, key, names)
        node = handle[key]
        if isinstance(node, h5py.Group) and "MATLAB_sparse" in node.attrs:
            # MATLAB stores a sparse matrix as compressed sparse columns: data, row ids (ir), column pointers (jc)
            num_rows = int(node.attrs["MATLAB_sparse"])
            jc = node["jc"][()]
            data = node["data"][()] if "data" in node else np.ones(len(node["ir"]), dtype=np.float64)
            matrix = scipy.sparse.csc_matrix((data, node["ir"][()], jc), shape=(num_rows, len(jc) - 1))
            return matrix.toarray()
        if not isinstance(node, h5py.Dataset):
            raise DataError(f"variable '{key}' in {path} is not a numeric matrix; save it as a plain numeric array")
        if node.ndim != 2:
            return np.asarray(node[()])
        # h5py sees MATLAB's column-major (rows, cols) matrix as (cols, rows): transpose back,
        # one block of samples at a time to keep the extra memory bounded.
        cols, rows = node.shape
        out = np.empty((rows, cols), dtype=node.dtype)
        block = max(1, _BLOCK_BYTES // max(1, cols * node.dtype.itemsize))
        for start in range(0, rows, block):
            out[start : start + block] = node[:, start : start + block].T
        return out


def _class_ids_to_onehot(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Convert single-column class-id label arrays to one-hot over the union of ids."""
    ids = {}
    for split, array in arrays.items():
        values = np.asarray(array, dtype=np.float64).ravel()
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise DataError(
                f"{split} labels have one column but are not integer class ids; "
                "store multi-label data as an (n, C) 0/1 matrix"
            )
        ids[split] = values.astype(np.int64)
    classes = np.unique(np.concatenate(list(ids.values())))
    onehot = {}
    for split, values in ids.items():
        matrix = np.zeros((len(values), len(classes)), dtype=np.float32)
        matrix[np.arange(len(values)), np.searchsorted(classes, values)] = 1.0
        onehot[split] = matrix
    return onehot, [f"class{c}" for c in classes]


def load_mat_dir(directory: str | Path, name: str | None = None) -> CrossModalDataset:
    """Load the community ``.mat`` layout from ``directory`` (see the module docstring)."""
    directory = Path(directory)
    found: dict[str, dict[str, Path]] = {}
    missing = []
    for split in SPLITS:
        files = {}
        for mod in MODALITIES:
            candidates = [directory / f"{split}_{mod}.mat"]
            if mod == "lab":
                candidates.append(directory / f"{split}_img_lab.mat")
            hit = next((p for p in candidates if p.is_file()), None)
            if hit is not None:
                files[mod] = hit
            elif split != "val":
                missing.append(candidates[0].name)
        if split == "val" and files and len(files) != len(MODALITIES):
            absent = [f"val_{mod}.mat" for mod in MODALITIES if mod not in files]
            raise DataError(f"{directory} has a partial validation split (missing {', '.join(absent)}); add them or remove the val_* files")
        if files:
            found[split] = files
    if missing:
        raise DataError(f"{directory} is missing {', '.join(missing)}; {_layouts_hint()}")

    arrays = {split: {mod: read_mat_array(path) for mod, path in files.items()} for split, files in found.items()}
    label_names = None
    single = [split for split in arrays if arrays[split]["lab"].shape[1] == 1]
    if single:
        if len(single) != len(arrays):
            raise DataError(f"{directory}: labels are class ids in {', '.join(single)} but a matrix elsewhere; use one label format for all splits")
        onehot, label_names = _class_ids_to_onehot({split: arrays[split]["lab"] for split in arrays})
        for split in arrays:
            arrays[split]["lab"] = onehot[split]
        log.info("%s: converted single-label class ids to %d one-hot columns", directory, len(label_names))
    splits = {split: Split(*(arrays[split][mod] for mod in MODALITIES)) for split in arrays}
    return CrossModalDataset(
        name=name or directory.name,
        train=splits["train"],
        test=splits["test"],
        val=splits.get("val"),
        label_names=label_names,
    )


# --- npz / npy ------------------------------------------------------------------------


def _splits_from_arrays(source: str, keys: set[str], get) -> dict[str, Split]:
    missing = [key for key in expected_files("npz") if key not in keys]
    if missing:
        raise DataError(f"{source} is missing {', '.join(missing)}; {_layouts_hint()}")
    val_keys = [f"{mod}_val" for mod in MODALITIES]
    present = [key for key in val_keys if key in keys]
    if present and len(present) != len(val_keys):
        absent = [key for key in val_keys if key not in keys]
        raise DataError(f"{source} has a partial validation split (missing {', '.join(absent)}); add them or remove the *_val arrays")
    splits = {}
    for split in SPLITS:
        if split == "val" and not present:
            continue
        splits[split] = Split(*(get(f"{mod}_{split}") for mod in MODALITIES))
    return splits


def load_npz(path: str | Path, name: str | None = None) -> CrossModalDataset:
    """Load one ``.npz`` archive (every array is read into memory and its CRC checked;
    ``allow_pickle=False``, so object arrays are refused)."""
    path = Path(path)
    arrays = _read_npz(path, fix="write it again with gcnretrieval.data.save_npz, storing plain numeric arrays")
    splits = _splits_from_arrays(str(path), set(arrays), arrays.__getitem__)
    label_names = [str(v) for v in arrays["label_names"].tolist()] if "label_names" in arrays else None
    return CrossModalDataset(
        name=name or path.stem, train=splits["train"], test=splits["test"], val=splits.get("val"), label_names=label_names
    )


def load_npy_dir(directory: str | Path, name: str | None = None) -> CrossModalDataset:
    """Load a directory of ``.npy`` files, memory-mapped read-only (float32 stays a memmap).

    A file shorter than its header promises (a truncated copy) is refused here, when it is
    opened.
    """
    directory = Path(directory)
    keys = {p.stem for p in directory.glob("*.npy")}

    def get(key: str) -> np.ndarray:
        return load_npy(directory / f"{key}.npy", mmap_mode="r",
                        fix="write it again with gcnretrieval.data.save_npy_dir")

    splits = _splits_from_arrays(str(directory), keys, get)
    label_names = [str(v) for v in np.asarray(get("label_names")).tolist()] if "label_names" in keys else None
    return CrossModalDataset(
        name=name or directory.name, train=splits["train"], test=splits["test"], val=splits.get("val"), label_names=label_names
    )


def load_dataset(path: str | Path, name: str | None = None, validate: bool = True) -> CrossModalDataset:
    """Load a dataset, detecting its format from what ``path`` holds.

    Args:
        path: a ``.npz`` file; a directory with ``train_img.mat`` (MATLAB layout); a
            directory with ``img_train.npy`` (memory-mapped); or a directory holding
            exactly one ``.npz`` file.
        name: dataset name (default: the file stem or directory name).
        validate: run :meth:`CrossModalDataset.validate` (default ``True``; it reads every
            feature once, in blocks).
    """
    path = Path(path)
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(f"{path} is a file but not a .npz archive; {_layouts_hint()}")
        dataset = load_npz(path, name)
    elif path.is_dir():
        archives = sorted(path.glob("*.npz"))
        if (path / "train_img.mat").is_file() or any(path.glob("*_img.mat")):
            dataset = load_mat_dir(path, name)
        elif (path / "img_train.npy").is_file() or any(path.glob("*_train.npy")):
            dataset = load_npy_dir(path, name)
        elif len(archives) == 1:
            dataset = load_npz(archives[0], name or path.name)
        else:
            raise DataError(f"no dataset files in {path}; {_layouts_hint()}")
    else:
        raise DataError(f"dataset path {path} does not exist; {_layouts_hint()}")
    log.info("loaded %r from %s", dataset, path)
    return dataset.validate() if validate else dataset


# --- writers --------------------------------------------------------------------------


def _named_arrays(dataset: CrossModalDataset) -> dict[str, np.ndarray]:
    arrays = {}
    for split_name, split in dataset.splits():
        for mod in MODALITIES:
            arrays[f"{mod}_{split_name}"] = getattr(split, _FIELDS[mod])
    arrays["label_names"] = np.asarray(dataset.label_names, dtype=str)
    return arrays


def save_npz(dataset: CrossModalDataset, path: str | Path, compressed: bool = False, overwrite: bool = False) -> Path:
    """Write ``dataset`` to one ``.npz`` archive (atomically); returns the path written.

    Args:
        dataset: what to write (float32 features, float32 labels, label names as strings).
        path: target file; ``.npz`` is appended when missing.
        compressed: use ``np.savez_compressed`` (default ``False``).
        overwrite: replace an existing file (default ``False``: raise :class:`DataError`).
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists; pass overwrite=True or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = np.savez_compressed if compressed else np.savez
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        writer(handle, **_named_arrays(dataset))
    return path


def save_npy_dir(dataset: CrossModalDataset, directory: str | Path, overwrite: bool = False) -> Path:
    """Write ``dataset`` as a directory of ``.npy`` files (atomically); returns the directory.

    Args:
        dataset: what to write.
        directory: target directory (created; an existing empty directory is fine).
        overwrite: replace an existing non-empty directory (default ``False``: raise
            :class:`DataError`).
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise DataError(f"{directory} already exists and is not empty; pass overwrite=True or choose another directory")
    with atomic_directory(directory, replace=True) as tmp:
        for key, array in _named_arrays(dataset).items():
            np.save(tmp / f"{key}.npy", array, allow_pickle=False)
    return directory
