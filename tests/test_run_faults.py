"""Runs under faults: a second writer of the same folder, a full or read-only disk, progress off a terminal."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gcnretrieval
import gcnretrieval.experiments.cells
from gcnretrieval.config import parse_overrides
from gcnretrieval.errors import FolderBusy, WriteFailed
from gcnretrieval.experiments import compare
from gcnretrieval.locks import FolderLock, holder
from gcnretrieval.training import RunDirectory, Trainer
from gcnretrieval.training.callbacks import ProgressBar

from test_experiments_compare import TINY as TINY_COMPARE

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "synthetic.toml"
TINY = ["data.synthetic.num_train=150", "data.synthetic.num_test=40", "data.synthetic.num_labels=6",
        "data.synthetic.image_dim=32", "data.synthetic.text_dim=24", "graph.node_feature_dim=16", "model.common_dim=32",
        "encoder.num_layers=2", "train.batch_size=32", "train.epochs=1"]


def _overrides(*extra: str) -> dict:
    return parse_overrides([*TINY, *extra])


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the lock ---------------------------------------------------------------------------------------------------


def _holding_process(folder: Path) -> subprocess.Popen:
    """Another process that takes ``folder``'s lock and sleeps."""
    code = ("import sys, time; from gcnretrieval.locks import FolderLock; "
            "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    assert child.stdout.readline().strip() == "locked"
    return child


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    child = _holding_process(tmp_path)
    try:
        found = holder(tmp_path)
        assert found["pid"] == child.pid and found["host"] == socket.gethostname()
        assert found["command"] == f"python -c ... {tmp_path}"
        with pytest.raises(FolderBusy, match=rf"^folder {tmp_path} is in use by pid {child.pid} on "
                                             rf"{socket.gethostname()} since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(`"):
            FolderLock(tmp_path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)  # no release: the .lock file and its record stay behind
        child.wait()
    assert (tmp_path / ".lock").is_file()
    assert holder(tmp_path) is None  # a dead process holds nothing
    with FolderLock(tmp_path) as lock:
        assert lock.held and holder(tmp_path)["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()  # released: the file is gone


def test_two_locks_in_one_process_exclude_each_other(tmp_path):
    with FolderLock(tmp_path, "run directory"):
        with pytest.raises(FolderBusy, match=f"run directory {tmp_path} is in use by pid {os.getpid()}"):
            FolderLock(tmp_path, "run directory").acquire()
    FolderLock(tmp_path).acquire().release()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    gcnretrieval.run(DEMO, _overrides("train.keep_last_checkpoint=true"), out=out, progress=False)
    return out


@pytest.mark.parametrize("resume", [True, False])
def test_a_second_run_on_a_locked_directory_stops_in_one_line(finished_run, main, resume):
    before = _snapshot(finished_run)
    with FolderLock(finished_run):
        code, stdout, stderr = main(["run", str(DEMO), "--out", str(finished_run), *(["--resume"] if resume else []),
                                     *_sets(*TINY, "train.epochs=2", "train.keep_last_checkpoint=true")])
    assert code == 2 and stdout == ""
    [line] = stderr.splitlines()
    assert line.startswith(f"error: run directory {finished_run} is in use by pid {os.getpid()} on ")
    assert line.endswith("; wait for it to finish, or stop that process")
    assert _snapshot(finished_run) == before


def test_evaluate_waits_for_nobody_while_a_run_writes(finished_run, main):
    with FolderLock(finished_run):
        code, _, stderr = main(["evaluate", str(finished_run)])
    assert code == 2 and len(stderr.splitlines()) == 1 and "is in use by pid" in stderr
    assert not (finished_run / "evaluation_best.json").exists()


def test_a_second_compare_on_the_same_folder_names_the_first_and_the_command(tmp_path, main, monkeypatch):
    out = tmp_path / "c"
    out.mkdir()
    monkeypatch.setattr("sys.argv", ["gcnretrieval", "compare", "demo", "--out", str(out)])
    with FolderLock(out, "experiment folder", gcnretrieval.experiments.cells.BUSY_ADVICE):
        with pytest.raises(FolderBusy) as caught:
            compare(TINY_COMPARE, ["gcn"], seeds=[0], out=out)
    message = str(caught.value)
    assert message.startswith(f"experiment folder {out} is in use by pid {os.getpid()} on ")
    assert message.endswith(f"; wait for it to finish, or stop it; then `gcnretrieval compare demo --out {out}` "
                            "continues it (finished cells are skipped)")
    assert "--resume" not in message
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_a_locked_sweep_or_tuning_folder_stops_before_training(tmp_path, command, monkeypatch):
    out = tmp_path / command
    out.mkdir()
    trained = []
    monkeypatch.setattr(Trainer, "fit", lambda self, *args, **kwargs: trained.append(1))
    with FolderLock(out, "experiment folder", gcnretrieval.experiments.cells.BUSY_ADVICE):
        with pytest.raises(FolderBusy, match=f"folder {out} is in use by pid {os.getpid()} .* continues it"):
            if command == "sweep":
                gcnretrieval.sweep(TINY_COMPARE, {"loss.alpha": [0.5, 1.0]}, out=out)
            else:
                gcnretrieval.tune(TINY_COMPARE, 1, out=out)
    assert trained == [] and list(out.iterdir()) == []


# -- a full or read-only disk -----------------------------------------------------------------------------------


def _full_disk_after(monkeypatch, saves: int) -> list:
    """Let ``saves`` checkpoint saves through, then fail every one with ENOSPC (after writing part of the file)."""
    original = RunDirectory.save_checkpoint
    calls = []

    def save(self, name, state):
        calls.append(name)
        if len(calls) > saves:
            partial = self.checkpoint_path(name).with_name(f".{name}.partial.tmp.pt")
            partial.write_bytes(b"\0" * 100)
            partial.unlink()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.checkpoint_path(name)))
        return original(self, name, state)

    monkeypatch.setattr(RunDirectory, "save_checkpoint", save)
    return calls


def test_a_full_disk_before_the_first_checkpoint_is_one_line_and_leaves_nothing(tmp_path, main, monkeypatch):
    _full_disk_after(monkeypatch, 0)
    out = tmp_path / "r"
    code, stdout, stderr = main(["run", str(DEMO), "--out", str(out), *_sets(*TINY)])
    assert code == 1 and stdout == ""
    lines = stderr.splitlines()
    assert lines[:-1] == [line for line in lines[:-1] if ": epoch 1/1: " in line]  # progress lines only
    error = lines[-1]
    assert error.startswith(f"error: cannot write {out / 'checkpoints' / 'last.pt'}: No space left on device; "
                            "this run needs about ")
    assert " MB free while it trains and keeps " in error
    assert error.endswith("; nothing was written; free space or choose another --out, and run again")
    assert not out.exists()


def _tensor_bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def test_the_space_a_run_needs_is_its_checkpoints(tmp_path, monkeypatch):
    _full_disk_after(monkeypatch, 0)
    seen = {}
    original = Trainer.checkpoint_bytes

    def spy(self):
        seen["estimate"] = original(self)
        seen["real"] = (_tensor_bytes(self.state_dict()), _tensor_bytes(self.weights_state()))
        return seen["estimate"]

    monkeypatch.setattr(Trainer, "checkpoint_bytes", spy)
    with pytest.raises(WriteFailed) as caught:
        gcnretrieval.run(DEMO, _overrides(), out=tmp_path / "r", progress=False)
    resume, weights = seen["estimate"]
    real_resume, real_weights = seen["real"]
    assert weights == real_weights
    # the resume state's tensors: weights, Adam's moments and step counters, and the RNG state (not counted)
    assert real_resume - 8192 <= resume < real_resume
    assert resume > 2.9 * weights
    need = (2 * resume + weights + 2**20) / 1e6
    assert f"needs about {need:.1f} MB free while it trains and keeps {weights / 1e6:.1f} MB" in str(caught.value)


def test_a_full_disk_later_leaves_a_directory_resume_continues(tmp_path, main, monkeypatch):
    deterministic = _overrides("train.deterministic=true", "train.epochs=3")
    straight = gcnretrieval.run(DEMO, deterministic, out=tmp_path / "straight", progress=False)
    out = tmp_path / "r"
    calls = _full_disk_after(monkeypatch, 2)  # epoch 1 saved (best and last), epoch 2's first save fails
    code, _, stderr = main(["run", str(DEMO), "--out", str(out), *_sets(*TINY, "train.deterministic=true",
                                                                         "train.epochs=3")])
    assert code == 1 and len(calls) == 3
    error = stderr.splitlines()[-1]
    assert error.startswith("error: cannot write ") and "No space left on device" in error
    assert error.endswith(f"; {out} keeps the epochs saved so far; free space, then run it again with --resume "
                          "to continue")
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert not (out / "final_metrics.json").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or p.name == ".lock"]
    monkeypatch.undo()
    resumed = gcnretrieval.run(DEMO, deterministic, out=out, resume=True, progress=False)

    def strip(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert strip(resumed.history) == strip(straight.history)
    assert resumed.test == straight.test
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_run_stopped_between_its_two_checkpoints_keeps_its_selected_weights(tmp_path, monkeypatch):
    # 12 labels and the 40 test pairs for selection: every epoch of the three improves on the last
    deterministic = _overrides("train.deterministic=true", "train.epochs=3", "data.synthetic.num_labels=12",
                               "eval.select_on=test")
    straight = gcnretrieval.run(DEMO, deterministic, out=tmp_path / "straight", progress=False)
    assert straight.history[1]["selected"]  # epoch 2 is selected: its best.pt is the save that fails
    original = RunDirectory.save_checkpoint

    def save(self, name, state):
        if name == "best" and state["epoch"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.checkpoint_path(name)))
        return original(self, name, state)

    monkeypatch.setattr(RunDirectory, "save_checkpoint", save)
    out = tmp_path / "r"
    with pytest.raises(WriteFailed, match="best.pt: No space left on device"):
        gcnretrieval.run(DEMO, deterministic, out=out, progress=False)
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["best_epoch"] == 2
    assert torch.load(out / "checkpoints" / "best.pt", weights_only=True)["epoch"] == 1
    monkeypatch.undo()
    resumed = gcnretrieval.run(DEMO, {**deterministic, "train.epochs": 2}, out=out, resume=True, progress=False)
    assert resumed.selected_epoch == 2  # best.pt was written again from last.pt's weights
    best = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 2
    two = gcnretrieval.run(DEMO, {**deterministic, "train.epochs": 2}, out=tmp_path / "two", progress=False)
    assert resumed.test == two.test


def test_a_half_written_metrics_line_does_not_survive_resume(tmp_path, monkeypatch):
    out = tmp_path / "r"
    original = RunDirectory.append_metrics

    def append(self, row):
        if row["epoch"] == 2:
            with (self.path / "metrics.jsonl").open("a") as handle:
                handle.write('{"epoch": 2, "loss_')
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "metrics.jsonl"))
        original(self, row)

    monkeypatch.setattr(RunDirectory, "append_metrics", append)
    with pytest.raises(WriteFailed, match="metrics.jsonl: No space left on device"):
        gcnretrieval.run(DEMO, _overrides("train.epochs=2"), out=out, progress=False)
    monkeypatch.undo()
    resumed = gcnretrieval.run(DEMO, _overrides("train.epochs=2"), out=out, resume=True, progress=False)
    assert [row["epoch"] for row in RunDirectory(out).metrics()] == [1, 2] == [r["epoch"] for r in resumed.history]


def test_a_read_only_folder_is_one_line(tmp_path, main, monkeypatch):
    @contextlib.contextmanager
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        yield

    monkeypatch.setattr("gcnretrieval.training.rundir.atomic_directory", read_only)
    out = tmp_path / "r"
    code, stdout, stderr = main(["run", str(DEMO), "--out", str(out), *_sets(*TINY)])
    assert code == 1 and stdout == ""
    assert stderr.splitlines() == [f"error: cannot write {out}: Read-only file system; nothing was written; "
                                   "make it writable or choose another --out, and run again"]
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_a_compare_cell_names_the_command_that_continues(tmp_path, monkeypatch):
    out = tmp_path / "c"
    recipe = {**TINY_COMPARE, "train": {**TINY_COMPARE["train"], "epochs": 2}}
    monkeypatch.setattr("sys.argv", ["gcnretrieval", "compare", "x.toml", "--out", str(out)])
    original = RunDirectory.save_checkpoint

    def save(self, name, state):  # the disk fills up in the second cell's second epoch
        if self.path.name == "l2gcn_seed0" and state["epoch"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.checkpoint_path(name)))
        return original(self, name, state)

    monkeypatch.setattr(RunDirectory, "save_checkpoint", save)
    with pytest.raises(WriteFailed) as caught:
        compare(recipe, ["gcn", "l2gcn"], seeds=[0], out=out, progress=False)
    message = str(caught.value)
    assert message.startswith("cell l2gcn_seed0: cannot write ") and "No space left on device" in message
    assert message.endswith(f"; free space, then `gcnretrieval compare x.toml --out {out}` continues it "
                            "(finished cells are skipped, a stopped one resumes)")
    assert "--resume" not in message
    assert not (out / ".lock").exists()
    monkeypatch.undo()
    again = compare(recipe, ["gcn", "l2gcn"], seeds=[0], out=out, progress=False)
    assert {c["name"]: c["status"] for c in again.cells} == {"gcn_seed0": "skipped", "l2gcn_seed0": "resumed"}


# -- progress off a terminal ------------------------------------------------------------------------------------


def test_progress_off_a_terminal_is_one_line_per_epoch(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    gcnretrieval.run(DEMO, _overrides("train.epochs=2"), out=tmp_path / "r")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"synthetic: epoch {epoch}/2: loss ") and ", val mAP " in line and line.endswith(" s")
    gcnretrieval.run(DEMO, _overrides("train.epochs=2"), out=tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""


def test_progress_off_a_terminal_also_reports_inside_a_long_epoch(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    bar = ProgressBar(interval=0.0)  # every batch counts as "a minute later"
    trainer = Trainer(gcnretrieval.training.build_experiment(gcnretrieval.config.load_config(DEMO, parse_overrides(TINY)),
                                                             device="cpu"))
    trainer.fit(gcnretrieval.training.run_callbacks(trainer.config.train, progress=False, extra=[bar]))
    lines = capsys.readouterr().err.splitlines()
    batches = len(trainer.loader)
    assert [line.split(" (")[0] for line in lines[:-1]] == [f"synthetic: epoch 1/1: batch {b}/{batches}"
                                                           for b in range(1, batches + 1)]
    assert lines[-1].startswith("synthetic: epoch 1/1: loss ")
