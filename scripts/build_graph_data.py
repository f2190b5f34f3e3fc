#!/usr/bin/env python
"""Build the label-vocabulary files shipped in ``graphs/`` (package ``gcnretrieval.graphdata``).

Reads the raw label files and word-vector files of the project's data folder and writes, per
label vocabulary, ``graphs/<name>.npz`` with the keys

- ``label_names``   (C,) unicode, the vocabulary's column order
- ``node_features`` (C, 300) float32, GloVe-6B 300-d word vectors matched to the names
- ``cooccurrence``  (C, C) int64, N = YᵀY over all images of the label file (diagonal = label counts)
- ``num_images``    () int64

plus ``graphs/<name>_labels.txt`` (one name a line) and ``graphs/PROVENANCE.md``.
Everything is stored without pickles, so ``np.load(..., allow_pickle=False)`` reads it.

Usage (from the repository root)::

    python scripts/build_graph_data.py [DATA_DIR] [--out graphs]

DATA_DIR defaults to ``../shared/data`` next to the repository.
"""
from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from pathlib import Path

import numpy as np
import scipy.io

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
EMB = "label-embeddings"


# --- safe reading -----------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else (no arbitrary callables)."""

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def load_numpy_pickle(path: Path):
    """Load a (Python-2 era) numpy pickle with ``encoding='latin1'``, arrays only."""
    with open(path, "rb") as fh:
        return _NumpyOnlyUnpickler(fh, encoding="latin1").load()


def read_names(path: Path) -> list[str]:
    names = [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n")]
    names = [n for n in names if n]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: duplicate label names")
    return names


def read_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- label matrices ---------------------------------------------------------------------


def labels_from_annotation(path: Path, names: list[str], aliases: dict[str, str] | None = None,
                           keep_empty: bool = True) -> np.ndarray:
    """(n, C) uint8 multi-hot matrix from a file of comma-separated label names per line."""
    aliases = aliases or {}
    column = {n: j for j, n in enumerate(names)}
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        tokens = [aliases.get(t, t) for t in line.split(",")] if line else []
        if not tokens and not keep_empty:
            continue
        row = np.zeros(len(names), dtype=np.uint8)
        for t in tokens:
            if t not in column:
                raise SystemExit(f"{path}:{number}: unknown label {t!r}")
            row[column[t]] = 1
        rows.append(row)
    return np.stack(rows)


def labels_from_01(path: Path, num_labels: int) -> np.ndarray:
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        values = line.split()
        if len(values) != num_labels or set(values) - {"0", "1"}:
            raise SystemExit(f"{path}:{number}: expected {num_labels} values 0/1")
        rows.append(np.array(values, dtype=np.uint8))
    return np.stack(rows)


def cooccurrence(y: np.ndarray) -> np.ndarray:
    y = y.astype(np.int64)
    return y.T @ y


# --- word vectors -----------------------------------------------------------------------


def mat_vectors(path: Path, count: int) -> np.ndarray:
    inp = np.asarray(scipy.io.loadmat(path)["inp"], dtype=np.float64)
    if inp.shape != (count, 300):
        raise SystemExit(f"{path}: expected ({count}, 300), got {inp.shape}")
    return inp


def rows_by_name(vectors: np.ndarray, source_names: list[str], names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(source_names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise SystemExit(f"word vectors missing for {missing}")
    return np.stack([vectors[index[n]] for n in names])


# --- vocabularies -----------------------------------------------------------------------


def build_mirflickr(data: Path) -> tuple[dict, list[str]]:
    names = read_names(data / EMB / "mirflickr24_labels.txt")
    y = labels_from_01(data / "mirflickr25k" / "all_labels.txt", len(names))
    # the same labels written as names must agree column by column
    y_named = labels_from_annotation(data / "mirflickr25k" / "labels_annotation.txt", names)
    if not np.array_equal(y, y_named):
        raise SystemExit("mirflickr: all_labels.txt and labels_annotation.txt disagree")
    vectors = mat_vectors(data / EMB / "mirflickr-inp-glove6B.mat", len(names))
    notes = [f"labels: {y.shape[0]} rows of all_labels.txt (identical to labels_annotation.txt); "
             f"every row has >= 1 label: {bool(y.sum(1).min() >= 1)}"]
    return dict(names=names, features=vectors, counts=cooccurrence(y), num_images=y.shape[0]), notes


def build_nuswide(data: Path) -> tuple[dict, list[str]]:
    names = read_names(data / EMB / "nuswide_tc21_labels.txt")
    y = labels_from_annotation(data / "nuswide-tc21" / "labels_annotation.txt", names)
    vectors = mat_vectors(data / EMB / "NUS-WIDE-TC21-inp-glove6B.mat", len(names))
    notes = [f"labels: {y.shape[0]} lines of labels_annotation.txt; empty lines: {int((y.sum(1) == 0).sum())}"]
    # second source: the exact glove.6B.300d rows of the 81-concept NUS-WIDE vocabulary
    names81 = read_names(data / EMB / "nuswide81_labels.txt")
    vec81 = np.asarray(load_numpy_pickle(data / EMB / "nuswide81_glove300.pkl"), dtype=np.float64)
    shared = [n for n in names if n in names81]
    if shared:
        diff = np.abs(rows_by_name(vectors, names, shared) - rows_by_name(vec81, names81, shared)).max(1)
        agree = [n for n, d in zip(shared, diff) if d < 1e-5]
        notes.append(f"cross-check against nuswide81_glove300.pkl: {len(shared)} of {len(names)} names present "
                     f"there, {len(agree)} rows identical (max |diff| < 1e-5)"
                     + ("" if len(agree) == len(shared) else
                        f"; differing: {', '.join(n for n in shared if n not in agree)}"))
    return dict(names=names, features=vectors, counts=cooccurrence(y), num_images=y.shape[0]), notes


def build_mscoco(data: Path) -> tuple[dict, list[str]]:
    names = read_names(data / EMB / "mscoco80_labels_id_order.txt")
    path = data / "coco2014" / "labels_annotation.txt"
    y_all = labels_from_annotation(path, names, aliases={"TV": "tv"})
    # Images without any instance annotation cannot be relevant to any query in the
    # shared-label retrieval protocol, so the vocabulary counts only labelled images.
    y = y_all[y_all.sum(1) > 0]
    vectors = mat_vectors(data / EMB / "MS-COCO-inp-glove6B.mat", len(names))
    sorted_names = read_names(data / EMB / "coco_labels_sorted.txt")
    pkl = np.asarray(load_numpy_pickle(data / EMB / "coco_glove_word2vec.pkl"), dtype=np.float64)
    diff = np.abs(vectors - rows_by_name(pkl, sorted_names, names)).max(1)
    differing = [f"{n} (max |diff| {d:.3g})" for n, d in zip(names, diff) if d >= 1e-5]
    notes = [
        f"labels: {y_all.shape[0]} lines of labels_annotation.txt, of which {y_all.shape[0] - y.shape[0]} are "
        f"empty (images without instance annotations); the empty lines are NOT counted: num_images = {y.shape[0]}",
        "`TV` in the annotation file is COCO's `tv`",
        f"cross-check of MS-COCO-inp-glove6B.mat (id order) against coco_glove_word2vec.pkl (alphabetical), rows "
        f"matched by name: {80 - len(differing)} of 80 identical (max |diff| < 1e-5); differing: "
        + (", ".join(differing) if differing else "none")
        + ". The shipped vectors are the .mat rows (the files DAGNN / I-GNN feed their label GCN).",
    ]
    return dict(names=names, features=vectors, counts=cooccurrence(y), num_images=y.shape[0]), notes


VOC2007_TRAINVAL_IMAGES = 5011


def build_voc(data: Path) -> tuple[dict, list[str]]:
    names = read_names(data / EMB / "voc_labels.txt")
    adj = load_numpy_pickle(data / EMB / "voc_adj.pkl")
    off = np.asarray(adj["adj"], dtype=np.int64)
    nums = np.asarray(adj["nums"], dtype=np.int64).reshape(-1)
    if off.shape != (len(names), len(names)) or nums.shape != (len(names),):
        raise SystemExit("voc_adj.pkl: unexpected shapes")
    if np.diag(off).any() or not np.array_equal(off, off.T):
        raise SystemExit("voc_adj.pkl: expected a symmetric count matrix with zero diagonal")
    counts = off.copy()
    np.fill_diagonal(counts, nums)
    if (counts > nums[:, None]).any():
        raise SystemExit("voc_adj.pkl: a pair count exceeds a label count")
    vectors = np.asarray(load_numpy_pickle(data / EMB / "voc_glove_word2vec.pkl"), dtype=np.float64)
    if vectors.shape != (len(names), 300):
        raise SystemExit("voc_glove_word2vec.pkl: unexpected shape")
    notes = [
        "no per-image VOC label file is available: the counts are voc_adj.pkl's 'adj' (off-diagonal pair counts) "
        "with its 'nums' (per-label image counts) on the diagonal",
        f"the per-label counts equal the PASCAL VOC 2007 trainval image counts per class (VOC2007 development kit "
        f"statistics), so num_images = {VOC2007_TRAINVAL_IMAGES}, the number of VOC 2007 trainval images; the "
        "pickle itself does not record it",
    ]
    return dict(names=names, features=vectors, counts=counts, num_images=VOC2007_TRAINVAL_IMAGES), notes


BUILDERS = {"mirflickr": build_mirflickr, "nuswide": build_nuswide, "mscoco": build_mscoco, "voc": build_voc}

SOURCES = {
    "mirflickr": [
        ("mirflickr25k/all_labels.txt, labels_annotation.txt",
         "sunnyttr/MATH @ 05208ea `dataset/flickr25k/` (identical content in louisfanhz/VTMUCH @ f250eae, MIT); "
         "MIRFlickr-25K, Huiskes & Lew, MIR 2008"),
        ("label-embeddings/mirflickr-inp-glove6B.mat, mirflickr24_labels.txt",
         "LivXue/GNN4CMR @ 2c13673 `embedding/` (MIT)"),
    ],
    "nuswide": [
        ("nuswide-tc21/labels_annotation.txt",
         "sunnyttr/MATH @ 05208ea `dataset/nuswide/`; NUS-WIDE, Chua et al., CIVR 2009"),
        ("label-embeddings/NUS-WIDE-TC21-inp-glove6B.mat, nuswide_tc21_labels.txt",
         "LivXue/GNN4CMR @ 2c13673 `embedding/` (MIT)"),
        ("label-embeddings/nuswide81_glove300.pkl, nuswide81_labels.txt (cross-check only)",
         "chehao2628/MSRN @ 469d28f `data/nuswide/`"),
    ],
    "mscoco": [
        ("coco2014/labels_annotation.txt",
         "sunnyttr/MATH @ 05208ea `dataset/coco/`; MS-COCO 2014 annotations, CC BY 4.0"),
        ("label-embeddings/MS-COCO-inp-glove6B.mat, mscoco80_labels_id_order.txt",
         "LivXue/GNN4CMR @ 2c13673 `embedding/` (MIT)"),
        ("label-embeddings/coco_glove_word2vec.pkl, coco_labels_sorted.txt (cross-check only)",
         "megvii-research/ML-GCN @ 5517d6f `data/coco/` (no licence file)"),
    ],
    "voc": [
        ("label-embeddings/voc_adj.pkl, voc_glove_word2vec.pkl, voc_labels.txt",
         "megvii-research/ML-GCN @ 5517d6f `data/voc/` (no licence file); PASCAL VOC 2007, Everingham et al."),
    ],
}

INPUTS = {
    "mirflickr": ["mirflickr25k/all_labels.txt", "mirflickr25k/labels_annotation.txt",
                  f"{EMB}/mirflickr24_labels.txt", f"{EMB}/mirflickr-inp-glove6B.mat"],
    "nuswide": ["nuswide-tc21/labels_annotation.txt", f"{EMB}/nuswide_tc21_labels.txt",
                f"{EMB}/NUS-WIDE-TC21-inp-glove6B.mat", f"{EMB}/nuswide81_glove300.pkl", f"{EMB}/nuswide81_labels.txt"],
    "mscoco": ["coco2014/labels_annotation.txt", f"{EMB}/mscoco80_labels_id_order.txt",
               f"{EMB}/MS-COCO-inp-glove6B.mat", f"{EMB}/coco_glove_word2vec.pkl", f"{EMB}/coco_labels_sorted.txt"],
    "voc": [f"{EMB}/voc_adj.pkl", f"{EMB}/voc_glove_word2vec.pkl", f"{EMB}/voc_labels.txt"],
}

TITLES = {
    "mirflickr": "MIRFlickr-25K, 24 labels (cleaned 20,015-pair protocol)",
    "nuswide": "NUS-WIDE TC-21 (21 most frequent concepts)",
    "mscoco": "MS-COCO 2014 train+val, 80 object categories (COCO category-id order)",
    "voc": "PASCAL VOC 2007, 20 classes",
}


def write_vocabulary(out: Path, name: str, built: dict) -> None:
    names = built["names"]
    features = built["features"]
    if not np.isfinite(features).all():
        raise SystemExit(f"{name}: non-finite word vectors")
    arrays = {
        "label_names": np.array(names, dtype=np.str_),
        "node_features": features.astype(np.float32),
        "cooccurrence": np.asarray(built["counts"], dtype=np.int64),
        "num_images": np.array(built["num_images"], dtype=np.int64),
    }
    tmp = out / f".{name}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(out / f"{name}.npz")
    (out / f"{name}_labels.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
    # round trip without pickles
    with np.load(out / f"{name}.npz", allow_pickle=False) as check:
        assert list(check["label_names"]) == names


def provenance(data: Path, notes: dict[str, list[str]], built: dict[str, dict]) -> str:
    lines = [
        "# Label-graph data: provenance",
        "",
        "Each `<name>.npz` holds one label vocabulary: `label_names` (C,), `node_features` (C, 300) float32,",
        "`cooccurrence` (C, C) int64 and `num_images` (scalar). `<name>_labels.txt` repeats the label order.",
        "The files contain no pickles (`numpy.load(path, allow_pickle=False)`).",
        "",
        "What was computed:",
        "",
        "- `node_features`: GloVe-6B 300-d word vectors of the label names, as published by the sources below",
        "  (rows matched by label name, stored as float32).",
        "- `cooccurrence`: N = YᵀY for the multi-hot label matrix Y of the label file: N_ij = number of images",
        "  carrying both labels i and j, N_ii = number of images carrying label i.",
        "- These counts cover **every** image of the label file (train and test of any split). A model must be",
        "  trained on a graph built from its own training labels only:",
        "  `gcnretrieval.build_label_graph(train_labels, vocabulary.node_features, label_names=...)`.",
        "  The shipped counts serve inspection (`gcnretrieval graph <name>`) and quick experiments.",
        "",
        "Rebuild (from the repository root, with the raw data folder next to it):",
        "",
        "    python scripts/build_graph_data.py ../shared/data --out graphs",
        "",
    ]
    for name in BUILDERS:
        b = built[name]
        lines += [f"## {name}: {TITLES[name]}", "",
                  f"- labels: {len(b['names'])}; num_images: {b['num_images']}", "- sources:"]
        for files, origin in SOURCES[name]:
            lines.append(f"  - `{files}` — {origin}")
        lines += [f"- {note}" for note in notes[name]]
        lines.append("- sha256 of the input files:")
        lines += [f"  - `{rel}` {sha256(data / rel)}" for rel in INPUTS[name]]
        lines.append("")
    lines += [
        "## Attribution",
        "",
        "The raw input files come unchanged from the public repositories named above; this folder",
        "ships only values derived from them (counts and word vectors). GloVe: Pennington, Socher & Manning,",
        "EMNLP 2014 (glove.6B vectors, PDDL). MS-COCO annotations: CC BY 4.0. MIRFlickr-25K and NUS-WIDE",
        "labels: research use under their datasets' terms.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help="raw data folder (default ../shared/data)")
    parser.add_argument("--out", default=str(REPO / "graphs"), help="output folder (default graphs/)")
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    if not (data / EMB).is_dir():
        parser.error(f"{data} has no {EMB}/ folder; pass the raw data folder")
    out.mkdir(parents=True, exist_ok=True)
    notes: dict[str, list[str]] = {}
    built: dict[str, dict] = {}
    for name, builder in BUILDERS.items():
        built[name], notes[name] = builder(data)
        write_vocabulary(out, name, built[name])
        print(f"{name}: C={len(built[name]['names'])} num_images={built[name]['num_images']}")
        for note in notes[name]:
            print(f"  {note}")
    (out / "PROVENANCE.md").write_text(provenance(data, notes, built), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
