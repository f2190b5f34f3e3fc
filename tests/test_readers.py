"""gcnretrieval.readers: what counts as a damaged file, and the one line that names it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from damage import truncate

from gcnretrieval.errors import ConfigError, DataError, RunFailed
from gcnretrieval.readers import load_npy, load_npz, load_torch, read_json, unreadable


def test_a_parser_error_becomes_one_line_with_the_first_line_of_its_message(tmp_path):
    path = tmp_path / "f.bin"
    with pytest.raises(ConfigError) as err, unreadable(path, "thing", "make another", ConfigError):
        raise RuntimeError("first line\nsecond line")
    assert str(err.value) == f"{path} is not a readable thing (RuntimeError: first line); make another"
    with pytest.raises(DataError) as err, unreadable(path, "thing", "make another"):
        raise ValueError("x" * 500)
    assert str(err.value) == f"{path} is not a readable thing (ValueError: {'x' * 157}...); make another"
    with pytest.raises(DataError) as err, unreadable(path, "thing", "make another"):
        raise ValueError("The first sentence. " + "y" * 200)
    assert str(err.value) == f"{path} is not a readable thing (ValueError: The first sentence.); make another"


def test_the_system_refusing_a_file_and_errors_of_the_package_pass_through(tmp_path):
    with pytest.raises(IsADirectoryError):
        load_npz(tmp_path)
    with pytest.raises(PermissionError), unreadable(tmp_path, "thing", "fix"):
        raise PermissionError(13, "Permission denied", str(tmp_path))
    with pytest.raises(RunFailed, match="^as raised$"), unreadable(tmp_path, "thing", "fix"):
        raise RunFailed("as raised")
    with pytest.raises(MemoryError), unreadable(tmp_path, "thing", "fix"):
        raise MemoryError
    with pytest.raises(TypeError), unreadable(tmp_path, "thing", "fix", catch=(UnicodeDecodeError,)):
        raise TypeError("a bug, not damage")
    with pytest.raises(torch.OutOfMemoryError), unreadable(tmp_path, "thing", "fix", keep=(torch.OutOfMemoryError,)):
        raise torch.OutOfMemoryError("out of memory")
    with pytest.raises(DataError, match=r"\(OSError: image file is truncated\)"), unreadable(tmp_path, "thing", "fix"):
        raise OSError("image file is truncated")  # a library's OSError without an error number is damage


def test_npz_and_npy_readers(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0))
    with pytest.raises(DataError, match=r"a\.npy is a single \.npy array, not a \.npz archive; write it again"):
        load_npz(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", x=np.arange(3), y=np.eye(2))
    arrays = load_npz(tmp_path / "b.npz")
    assert list(arrays) == ["x", "y"] and not isinstance(arrays["y"], np.memmap)
    np.testing.assert_array_equal(arrays["y"], np.eye(2))
    mapped = load_npy(tmp_path / "a.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and mapped.tolist() == list(range(6))
    (tmp_path / "c.npy").write_bytes(b"\x80\x04K\x01.")  # a pickle: refused by its first bytes
    with pytest.raises(DataError, match=r"c\.npy is not a readable \.npy array \(it does not start with the \.npy "
                                        r"signature\); write it again with numpy\.save"):
        load_npy(tmp_path / "c.npy")


def test_json_and_torch_readers(tmp_path):
    (tmp_path / "a.json").write_text('{"a": [1, 2')
    with pytest.raises(RunFailed, match=r"a\.json is not a readable run file \(JSONDecodeError: "):
        read_json(tmp_path / "a.json", "run file", "fix", RunFailed)
    torch.save({"w": torch.ones(3)}, tmp_path / "c.pt")
    assert load_torch(tmp_path / "c.pt", "checkpoint", "fix")["w"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(DataError, match=r"c\.pt is not a readable checkpoint \(RuntimeError: PytorchStreamReader "):
        load_torch(truncate(tmp_path / "c.pt"), "checkpoint", "fix")
