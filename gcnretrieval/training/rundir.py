"""The run directory: one folder per run, created whole, each file written atomically.

``recipe.toml`` (as given), ``config.resolved.json`` (every key, the seed used, absolute
data paths), ``environment.json``, ``train.log``, ``metrics.jsonl`` (one line per epoch),
``final_metrics.json``, ``checkpoints/best.pt`` (the selected weights), ``checkpoints/last.pt``
(the resume state, until the run has finished), ``figures/``, ``report.md``.
:meth:`RunDirectory.create` assembles the first files in a staging folder and renames it
into place; it refuses a non-empty folder and uses an empty one. While a process writes the
folder it holds its lock (:class:`~gcnretrieval.locks.FolderLock`, ``.lock``). Everything
follows the user's umask.
"""
from __future__ import annotations

import io
import json
import logging
import os
import platform
import shutil
from functools import reduce
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy
import torch
import torch_geometric

from gcnretrieval import __version__, readers
from gcnretrieval.config import Config, check_same_config, load_config
from gcnretrieval.cpu import cpu_model
from gcnretrieval.defaults import BEST_CHECKPOINT, CHECKPOINTS, LAST_CHECKPOINT
from gcnretrieval.errors import ConfigError, FolderBusy, GcnRetrievalError, RunFailed
from gcnretrieval.files import atomic_directory, atomic_path, write_json, write_text
from gcnretrieval.locks import FolderLock, busy_message, holder

log = logging.getLogger(__name__)

__all__ = ["BEST", "CHECKPOINTS", "LAST", "RESUME_MAY_CHANGE", "RunDirectory", "RunExists", "cpu_model", "environment"]

#: the checkpoints of a run (``checkpoints/<name>.pt``; :mod:`gcnretrieval.defaults`): selected weights, resume state
BEST, LAST = BEST_CHECKPOINT, LAST_CHECKPOINT  # short names inside the training package
# the fix a damaged file of a run calls for
_DAMAGED_RUN = "train again into a new run directory"
#: what a process that finds a run directory locked is told
BUSY_ADVICE = "wait for it to finish, or stop that process"
#: the keys of a run's configuration that ``--resume`` may change
RESUME_MAY_CHANGE = ("train.epochs", "train.device", "train.keep_last_checkpoint")


class RunExists(ConfigError):
    """A new run was asked for in a folder that already holds one."""


def environment(device: Any) -> dict[str, Any]:
    """Versions of the software a run used, its device and the machine's processor."""
    info: dict[str, Any] = {
        "gcnretrieval": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "torch_geometric": torch_geometric.__version__, "numpy": numpy.__version__,
        "device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
    }
    if str(device).startswith("cuda"):
        info.update(device_name=torch.cuda.get_device_name(torch.device(device)), cuda=torch.version.cuda)
    return info


class RunDirectory:
    """A run's folder and the only way files get into it (see :meth:`create` and :meth:`open`)."""

    #: the resolved configuration, the per-epoch rows, and the test mAPs written last (a run with them has finished)
    CONFIG, METRICS, FINAL = "config.resolved.json", "metrics.jsonl", "final_metrics.json"
    #: the run's summary in markdown
    REPORT = "report.md"
    #: the folders of the checkpoints and of the history figures
    CHECKPOINTS_DIR, FIGURES_DIR = "checkpoints", "figures"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def lock(cls, path: str | Path) -> FolderLock:
        """The lock of the run directory ``path`` (not yet taken)."""
        return FolderLock(path, "run directory", BUSY_ADVICE)

    @classmethod
    def check_free(cls, path: str | Path) -> None:
        """Refuse ``path`` if it holds anything (an empty folder is fine): :class:`FolderBusy` while
        another process writes it, else :class:`RunExists`."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if path.is_dir() and (found := holder(path)) is not None:
                raise FolderBusy(busy_message(path, "run directory", found, BUSY_ADVICE))
            raise RunExists(f"run directory {path} already exists; pass --resume to continue it, "
                            "or choose another --name or --out")

    @classmethod
    def create(cls, path: str | Path, config: Config, *, recipe_text: str, device: Any = "cpu",
               files: Mapping[str, Any] | None = None, folders: tuple[str, ...] = (CHECKPOINTS_DIR, FIGURES_DIR),
               lock: FolderLock | None = None) -> RunDirectory:
        """Write ``recipe.toml``, ``config.resolved.json``, ``environment.json``, an empty
        ``metrics.jsonl``, the empty ``folders`` and ``files`` (name -> text or JSON value) in a
        staging folder, then rename it to ``path``; ``lock`` (:meth:`lock`), when given, is taken
        in the staging folder, so the directory appears already locked. A ``path`` that holds
        anything is refused when the staging folder is renamed (:meth:`check_free` says why)."""
        files = {"recipe.toml": recipe_text, cls.CONFIG: config.to_dict(), "environment.json": environment(device),
                 cls.METRICS: "", **(files or {})}
        try:
            with atomic_directory(path) as staging:
                for name, content in files.items():
                    (write_text if isinstance(content, str) else write_json)(staging / name, content)
                for name in folders:
                    (staging / name).mkdir()
                if lock is not None:
                    lock.acquire(staging)
        except OSError as err:
            if lock is not None:
                lock.release()
            if Path(path).exists():
                cls.check_free(path)  # the rename failed because path holds something
            # name the run directory, not the staging folder the user never asked for
            raise OSError(err.errno, err.strerror, str(path)) from None
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunDirectory:
        """An existing run directory (one with ``config.resolved.json``)."""
        run_dir = cls(path)
        if not (run_dir.path / cls.CONFIG).is_file():
            raise ConfigError(f"{run_dir.path} is not a run directory (no {cls.CONFIG}); "
                              "give the folder `gcnretrieval run` wrote")
        return run_dir

    def remove(self) -> None:
        """Delete the whole folder (a run that stopped before its first epoch)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def config(self) -> Config:
        """The saved configuration (keys added since it was written take their defaults)."""
        try:
            return load_config(self.read_json(self.CONFIG))
        except GcnRetrievalError as err:
            raise ConfigError(f"{self.path} has a configuration this version cannot read ({err}); use the gcnretrieval "
                              "version its environment.json names, or train into a new folder") from None

    def resumable_config(self, new: Config) -> Config:
        """The saved configuration with ``new``'s values of :data:`RESUME_MAY_CHANGE`; any other difference is refused."""
        if not self.checkpoint_path(LAST).is_file() and self.finished():
            raise ConfigError(f"{self.path} has finished and did not keep its resume state (checkpoints/last.pt); "
                              "start a new run (runs that should stay extendable: "
                              "--set train.keep_last_checkpoint=true)")
        if not self.checkpoint_path(LAST).is_file() or not (self.path / self.CONFIG).is_file():
            raise ConfigError(f"nothing to resume in {self.path}: no checkpoints/last.pt or {self.CONFIG}; "
                              "run without --resume")
        saved = self.config()
        check_same_config(saved, new, where=f"cannot resume {self.path}: it was run", may_differ=RESUME_MAY_CHANGE,
                          fix=f"only {', '.join(RESUME_MAY_CHANGE[:-1])} and {RESUME_MAY_CHANGE[-1]} may change on --resume")
        return saved.replace(**{key: reduce(getattr, key.split("."), new) for key in RESUME_MAY_CHANGE})

    def read_json(self, name: str) -> Any:
        """A JSON file of the run; a damaged one raises :class:`~gcnretrieval.errors.RunFailed`."""
        return readers.read_json(self.path / name, "run file (JSON)", _DAMAGED_RUN, RunFailed)

    def write_json(self, name: str, value: Any) -> Path:
        return write_json(self.path / name, value)

    def write_text(self, name: str, text: str) -> Path:
        return write_text(self.path / name, text)

    def metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl``."""
        lines = (self.path / self.METRICS).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def rewrite_metrics(self, rows: list[dict[str, Any]]) -> None:
        write_text(self.path / self.METRICS, "".join(json.dumps(row) + "\n" for row in rows))

    def append_metrics(self, row: dict[str, Any]) -> None:
        with (self.path / self.METRICS).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def checkpoint_path(self, name: str) -> Path:
        if name not in CHECKPOINTS:
            raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {name!r}")
        return self.path / self.CHECKPOINTS_DIR / f"{name}.pt"

    def save_checkpoint(self, name: str, state: dict[str, Any]) -> Path:
        """Write a checkpoint (tensors and plain containers only), flushed to disk, atomically.

        It is serialised in memory first, so a full disk raises ``OSError`` (``ENOSPC``) rather than
        the serialiser's ``RuntimeError``; the previous checkpoint of that name is left as it was."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        path = self.checkpoint_path(name)
        try:
            with atomic_path(path) as tmp, tmp.open("wb") as handle:
                handle.write(buffer.getbuffer())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            if err.filename is None:  # a failed write() names no file
                raise OSError(err.errno, err.strerror, str(path)) from None
            raise
        return path

    def drop_resume_state(self) -> None:
        """Delete ``checkpoints/last.pt`` (a finished run that does not keep it)."""
        self.checkpoint_path(LAST).unlink(missing_ok=True)

    def finished(self) -> bool:
        """Whether the run has finished (``final_metrics.json`` is written last)."""
        return (self.path / self.FINAL).is_file()

    def require_checkpoint(self, name: str) -> Path:
        """The path of checkpoint ``name``, or one line saying why it is absent."""
        path = self.checkpoint_path(name)
        if path.is_file():
            return path
        if name == LAST and self.finished():
            raise ConfigError(f"{self.path} has finished and kept only its selected weights (checkpoints/best.pt); "
                              "use the best checkpoint, or set train.keep_last_checkpoint = true in the runs "
                              "that should keep last.pt")
        raise ConfigError(f"checkpoint {path} does not exist; train first with `gcnretrieval run`")

    def load_checkpoint(self, name: str, map_location: Any = "cpu") -> dict[str, Any]:
        """A checkpoint (:meth:`require_checkpoint`), loaded with ``torch.load(weights_only=True)``."""
        return readers.load_torch(self.require_checkpoint(name), "gcnretrieval checkpoint", _DAMAGED_RUN, RunFailed,
                                  map_location=map_location)

    @contextmanager
    def capture_log(self) -> Iterator[None]:
        """Copy the package's log records of the block to ``train.log`` (those from before the
        folder existed included)."""
        handler = _RunLog(self.path / "train.log")
        logger = logging.getLogger("gcnretrieval")
        level = logger.level
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            handler.close()


class _RunLog(logging.Handler):
    """Buffers records until ``path``'s run directory exists, then appends them to ``path``."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.path, self.buffer = path, []

    def emit(self, record: logging.LogRecord) -> None:
        self.buffer.append(self.format(record) + "\n")
        if (self.path.parent / RunDirectory.CONFIG).is_file():
            # a full or read-only disk is silent here: the run's own writes report it, once
            with suppress(OSError), self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(self.buffer)
            self.buffer = []

