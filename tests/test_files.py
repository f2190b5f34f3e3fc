"""Files written whole or not at all: CSV cells, staging folders."""
from __future__ import annotations

import pytest

from gcnretrieval.files import atomic_directory, write_csv


def test_write_csv_leaves_none_and_missing_keys_empty_and_ignores_other_keys(tmp_path):
    rows = [{"a": None, "b": 1.5, "other": 3}, {"a": "x y"}, {"a": 0, "b": False}]
    path = write_csv(tmp_path / "t.csv", rows, ["a", "b"])
    assert path.read_text() == "a,b\n,1.5\nx y,\n0,False\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as staging:
        (staging / "a.txt").write_text("a")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "a.txt").read_text() == "a"
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "failed") as staging:
        (staging / "b.txt").write_text("b")
        raise RuntimeError("stop")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the staging folder is gone
    with atomic_directory(target, replace=True) as staging:
        (staging / "c.txt").write_text("c")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in target.iterdir()] == ["c.txt"]
