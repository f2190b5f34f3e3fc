"""Loaders and writers: every format round-trips a tiny dataset; format detection; errors."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse
from damage import flip_member_byte, truncate

from gcnretrieval.data import (
    CrossModalDataset,
    Split,
    load_dataset,
    load_mat_dir,
    load_npy_dir,
    load_npz,
    read_mat_array,
    save_npy_dir,
    save_npz,
)
from gcnretrieval.errors import DataError

PASCAL = Path(__file__).resolve().parent / "data" / "pascal_sentence_sample"  # real DSCMR file, see ATTRIBUTION.md


def _split(n, seed, dv=5, dt=7, c=4):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.4).astype(np.float32)
    labels[np.arange(n), rng.integers(0, c, n)] = 1.0
    return Split(rng.standard_normal((n, dv)).astype(np.float32), rng.random((n, dt), dtype=np.float32), labels)


def _tiny(with_val=False, names=("sky", "dog", "car", "tree")):
    return CrossModalDataset(
        "tiny", _split(12, 0), _split(6, 1), _split(3, 2) if with_val else None, list(names) if names else None
    )


def _assert_same_arrays(a: CrossModalDataset, b: CrossModalDataset):
    assert [name for name, _ in a.splits()] == [name for name, _ in b.splits()]
    for (_, sa), (_, sb) in zip(a.splits(), b.splits()):
        for field in ("image", "text", "labels"):
            got = getattr(sb, field)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(getattr(sa, field), got)


# --- MATLAB ----------------------------------------------------------------------------


def _write_mat5(directory: Path, ds: CrossModalDataset):
    for split_name, split in ds.splits():
        for mod, array in (("img", split.image), ("txt", split.text), ("lab", split.labels)):
            key = f"{split_name}_{mod}"
            scipy.io.savemat(directory / f"{key}.mat", {key: array})


def _write_mat73(path: Path, key: str, array: np.ndarray):
    """Write ``array`` as MATLAB v7.3 does: HDF5 after a 512-byte header, column-major (transposed)."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        node = handle.create_dataset(key, data=np.ascontiguousarray(array.T))
        node.attrs["MATLAB_class"] = np.bytes_("single" if array.dtype == np.float32 else "double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as handle:
        handle.write(header)


def test_mat_v5_round_trip(tmp_path):
    ds = _tiny(with_val=True)
    _write_mat5(tmp_path, ds)
    loaded = load_dataset(tmp_path)
    _assert_same_arrays(ds, loaded)
    assert loaded.name == tmp_path.name
    assert loaded.label_names == ["label00", "label01", "label02", "label03"]  # .mat files carry no names


def test_mat_v73_round_trip(tmp_path):
    ds = _tiny()
    for split_name, split in ds.splits():
        for mod, array in (("img", split.image), ("txt", split.text), ("lab", split.labels.astype(np.float64))):
            _write_mat73(tmp_path / f"{split_name}_{mod}.mat", f"{split_name}_{mod}", array)
    with open(tmp_path / "train_img.mat", "rb") as handle:
        assert handle.read(10) == b"MATLAB 7.3"
    assert h5py.is_hdf5(tmp_path / "train_img.mat")
    loaded = load_dataset(tmp_path, name="v73")
    _assert_same_arrays(ds, loaded)
    assert loaded.train.image.shape == (12, 5)  # transposed back to rows = pairs


def test_mat_v73_sparse_matrix(tmp_path):
    dense = np.zeros((6, 4))
    dense[0, 1], dense[3, 3], dense[5, 0] = 1.0, 2.0, 1.0
    csc = scipy.sparse.csc_matrix(dense)
    path = tmp_path / "train_txt.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:
        group = handle.create_group("train_txt")
        group.attrs["MATLAB_class"] = np.bytes_("double")
        group.attrs["MATLAB_sparse"] = np.uint64(6)
        group.create_dataset("data", data=csc.data)
        group.create_dataset("ir", data=csc.indices.astype(np.uint64))
        group.create_dataset("jc", data=csc.indptr.astype(np.uint64))
    np.testing.assert_array_equal(read_mat_array(path), dense)


def test_mat_v5_sparse_text_and_other_variable_name(tmp_path):
    dense = np.eye(5, 3)
    scipy.io.savemat(tmp_path / "a.mat", {"a": scipy.sparse.csr_matrix(dense)})
    np.testing.assert_array_equal(read_mat_array(tmp_path / "a.mat"), dense)
    scipy.io.savemat(tmp_path / "b.mat", {"features": dense})  # only variable: used whatever its name
    np.testing.assert_array_equal(read_mat_array(tmp_path / "b.mat"), dense)
    scipy.io.savemat(tmp_path / "c.mat", {"x": dense, "y": dense})
    with pytest.raises(DataError, match=r"has no variable 'c' \(found: x, y\)"):
        read_mat_array(tmp_path / "c.mat")


def test_single_label_class_ids_become_one_hot(tmp_path):
    rng = np.random.default_rng(0)
    for split_name, n in (("train", 8), ("test", 4)):
        scipy.io.savemat(tmp_path / f"{split_name}_img.mat", {f"{split_name}_img": rng.random((n, 3), dtype=np.float32)})
        scipy.io.savemat(tmp_path / f"{split_name}_txt.mat", {f"{split_name}_txt": rng.random((n, 2), dtype=np.float32)})
    # Pascal-style file names and class ids (ids 2 and 7 occur only in one split each)
    scipy.io.savemat(tmp_path / "train_img_lab.mat", {"train_img_lab": np.array([[0], [2], [0], [5], [5], [2], [0], [2]])})
    scipy.io.savemat(tmp_path / "test_img_lab.mat", {"test_img_lab": np.array([[7], [0], [5], [0]])})
    ds = load_dataset(tmp_path)
    assert ds.label_names == ["class0", "class2", "class5", "class7"]
    np.testing.assert_array_equal(ds.train.labels.argmax(1), [0, 1, 0, 2, 2, 1, 0, 1])
    np.testing.assert_array_equal(ds.test.labels.argmax(1), [3, 0, 2, 0])
    assert ds.train.labels.sum() == 8 and ds.test.labels.sum() == 4


def test_mat_missing_files_are_listed(tmp_path):
    ds = _tiny()
    _write_mat5(tmp_path, ds)
    (tmp_path / "test_lab.mat").unlink()
    (tmp_path / "train_txt.mat").unlink()
    with pytest.raises(DataError, match=r"is missing train_txt.mat, test_lab.mat; expected a directory with train_img.mat"):
        load_dataset(tmp_path)


def test_real_pascal_sentence_features_load():
    array = read_mat_array(PASCAL / "test_img.mat")
    assert array.shape == (100, 4096)
    assert array.dtype == np.float32
    assert np.isfinite(array).all() and (array >= 0).all()  # fc7 features after ReLU
    # the sample lacks the training image features: the loader must say which file is missing
    with pytest.raises(DataError, match="missing train_img.mat"):
        load_mat_dir(PASCAL)


# --- npz / npy -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_val", [False, True])
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trip(tmp_path, with_val, compressed):
    ds = _tiny(with_val=with_val)
    written = save_npz(ds, tmp_path / "tiny", compressed=compressed)
    assert written == tmp_path / "tiny.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.npz"]  # no temporary left behind
    with np.load(written, allow_pickle=False) as archive:
        assert "img_train" in archive.files and ("img_val" in archive.files) == with_val
    loaded = load_dataset(written)
    _assert_same_arrays(ds, loaded)
    assert loaded.label_names == ds.label_names and loaded.name == "tiny"
    assert (loaded.val is None) == (not with_val)


def test_npy_dir_round_trip_is_memory_mapped(tmp_path):
    ds = _tiny(with_val=True)
    save_npy_dir(ds, tmp_path / "tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]
    loaded = load_dataset(tmp_path / "tiny")
    _assert_same_arrays(ds, loaded)
    assert loaded.label_names == ds.label_names
    for _, split in loaded.splits():
        assert isinstance(split.image, np.memmap) and isinstance(split.text, np.memmap)
    assert isinstance(load_npy_dir(tmp_path / "tiny").train.image, np.memmap)


def test_directory_holding_one_npz(tmp_path):
    ds = _tiny()
    save_npz(ds, tmp_path / "inner.npz")
    loaded = load_dataset(tmp_path)
    _assert_same_arrays(ds, loaded)
    assert loaded.name == tmp_path.name


def test_writers_refuse_to_overwrite(tmp_path):
    ds = _tiny()
    save_npz(ds, tmp_path / "a.npz")
    with pytest.raises(DataError, match="already exists"):
        save_npz(ds, tmp_path / "a.npz")
    save_npz(_tiny(names=("w", "x", "y", "z")), tmp_path / "a.npz", overwrite=True)
    assert load_npz(tmp_path / "a.npz").label_names == ["w", "x", "y", "z"]
    save_npy_dir(ds, tmp_path / "d")
    with pytest.raises(DataError, match="not empty"):
        save_npy_dir(ds, tmp_path / "d")
    save_npy_dir(_tiny(names=("w", "x", "y", "z")), tmp_path / "d", overwrite=True)
    assert load_npy_dir(tmp_path / "d").label_names == ["w", "x", "y", "z"]


def test_npz_missing_and_partial_keys(tmp_path):
    ds = _tiny()
    arrays = {"img_train": ds.train.image, "txt_train": ds.train.text, "lab_train": ds.train.labels}
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(DataError, match="missing img_test, txt_test, lab_test"):
        load_npz(tmp_path / "a.npz")
    arrays.update(img_test=ds.test.image, txt_test=ds.test.text, lab_test=ds.test.labels, img_val=ds.test.image)
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(DataError, match=r"partial validation split \(missing txt_val, lab_val\)"):
        load_npz(tmp_path / "b.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    ds = _tiny()
    save_npz(ds, tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["txt_test"] = np.array([{"a": 1}] * 6, dtype=object)
    np.savez(tmp_path / "p.npz", **arrays)
    with pytest.raises(DataError, match=r"p\.npz is not a readable \.npz archive \(ValueError: Object arrays cannot be loaded"):
        load_npz(tmp_path / "p.npz")


def test_load_dataset_validates(tmp_path):
    ds = _tiny()
    ds.train.labels[4] = 0.0
    save_npz(ds, tmp_path / "bad.npz")
    with pytest.raises(DataError, match=r"split 'train' has 1 pair\(s\) without any label \(first at row 4\)"):
        load_dataset(tmp_path / "bad.npz")
    assert len(load_dataset(tmp_path / "bad.npz", validate=False).train) == 12


def test_unknown_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(DataError, match="no dataset files"):
        load_dataset(tmp_path)
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="not a .npz archive"):
        load_dataset(tmp_path / "x.csv")


# --- damaged files: one DataError naming the file, when the file is opened --------------


def _one_line(err: pytest.ExceptionInfo, path: Path, reason: str) -> None:
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path} is not a readable "), message
    assert reason in message, message


def test_truncated_npz_is_named(tmp_path):
    path = truncate(save_npz(_tiny(), tmp_path / "a.npz"))
    with pytest.raises(DataError) as err:
        load_dataset(path)
    _one_line(err, path, "(BadZipFile: File is not a zip file); write it again with gcnretrieval.data.save_npz")


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_member_with_a_bad_crc_is_named_when_loaded(tmp_path, compressed):
    path = save_npz(_tiny(), tmp_path / "a.npz", compressed=compressed)
    flip_member_byte(path, "txt_test.npy")
    with np.load(path) as archive:  # the archive opens: only reading the member finds the damage
        assert "txt_test" in archive.files
    with pytest.raises(DataError) as err:
        load_npz(path)
    _one_line(err, path, "(BadZipFile: Bad CRC-32 for file 'txt_test.npy')")


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])  # empty, inside the header, inside the data
def test_truncated_npy_fails_when_opened_memory_mapped(tmp_path, keep):
    save_npy_dir(_tiny(), tmp_path / "d")
    path = truncate(tmp_path / "d" / "img_test.npy", keep)
    with pytest.raises(DataError) as err:
        load_npy_dir(tmp_path / "d")
    _one_line(err, path, "write it again with gcnretrieval.data.save_npy_dir")


def test_text_file_named_mat_is_named(tmp_path):
    _write_mat5(tmp_path, _tiny())
    path = tmp_path / "train_img.mat"
    path.write_text("this text file is not a MATLAB file\n")
    assert path.stat().st_size == 36
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path)
    _one_line(err, path, "; save it again with MATLAB or scipy.io.savemat")


def test_truncated_mat_v5_and_v73_are_named(tmp_path):
    array = np.arange(600, dtype=np.float64).reshape(60, 10)
    scipy.io.savemat(tmp_path / "a.mat", {"a": array})
    _write_mat73(tmp_path / "b.mat", "b", array)
    for name in ("a.mat", "b.mat"):
        path = truncate(tmp_path / name)
        with pytest.raises(DataError) as err:
            read_mat_array(path)
        _one_line(err, path, "MATLAB .mat file")
