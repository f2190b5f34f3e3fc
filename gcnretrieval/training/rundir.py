"""The run directory: one folder per run, created whole, each file written atomically.

``recipe.toml`` (as given), ``config.resolved.json`` (every key, the seed used, absolute
data paths), ``environment.json``, ``train.log``, ``metrics.jsonl`` (one line per epoch),
``final_metrics.json``, ``checkpoints/{last,best}.pt``, ``figures/``, ``report.md``.
:meth:`RunDirectory.create` assembles the first files in a staging folder and renames it
into place; it refuses a non-empty folder and uses an empty one. Everything follows the
user's umask.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy
import torch
import torch_geometric

from gcnretrieval import __version__, readers
from gcnretrieval.config import Config, first_difference, load_config
from gcnretrieval.cpu import cpu_model
from gcnretrieval.errors import ConfigError, GcnRetrievalError, RunFailed
from gcnretrieval.files import atomic_directory, atomic_path, write_json, write_text

log = logging.getLogger(__name__)

__all__ = ["RunDirectory", "cpu_model", "environment"]

CHECKPOINTS = ("best", "last")
# the fix a damaged file of a run calls for
_DAMAGED_RUN = "train again into a new run directory"


def environment(device: Any) -> dict[str, Any]:
    """Versions of the software a run used, its device and the machine's processor."""
    info: dict[str, Any] = {
        "gcnretrieval": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "torch_geometric": torch_geometric.__version__, "numpy": numpy.__version__,
        "device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
    }
    if str(device).startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


class RunDirectory:
    """A run's folder and the only way files get into it (see :meth:`create` and :meth:`open`)."""

    CONFIG = "config.resolved.json"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def check_free(cls, path: str | Path) -> None:
        """Refuse ``path`` if it holds anything (an empty folder is fine)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(f"run directory {path} already exists; pass --resume to continue it, "
                              "or choose another --name or --out")

    @classmethod
    def create(cls, path: str | Path, config: Config, *, recipe_text: str, device: Any = "cpu",
               files: Mapping[str, Any] | None = None, folders: tuple[str, ...] = ("checkpoints", "figures")
               ) -> RunDirectory:
        """Write ``recipe.toml``, ``config.resolved.json``, ``environment.json``, an empty
        ``metrics.jsonl``, the empty ``folders`` and ``files`` (name -> text or JSON value) in a
        staging folder, then rename it to ``path``."""
        cls.check_free(path)
        files = {"recipe.toml": recipe_text, cls.CONFIG: config.to_dict(), "environment.json": environment(device),
                 "metrics.jsonl": "", **(files or {})}
        try:
            with atomic_directory(path) as staging:
                for name, content in files.items():
                    if isinstance(content, str):
                        (staging / name).write_text(content, encoding="utf-8")
                    else:
                        write_json(staging / name, content)
                for name in folders:
                    (staging / name).mkdir()
        except OSError as err:
            if Path(path).exists():
                cls.check_free(path)  # it appeared meanwhile
            raise
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
            raise ConfigError(f"{self.path} has a configuration this version cannot read ({err}); "
                              "choose another --out/--name or delete that directory") from None

    def resumable_config(self, new: Config, may_change: tuple[str, ...] = ("train.epochs", "train.device")) -> Config:
        """The saved configuration with ``new``'s values of ``may_change``; any other difference is refused."""
        if not self.checkpoint_path("last").is_file() or not (self.path / self.CONFIG).is_file():
            raise ConfigError(f"nothing to resume in {self.path}: no checkpoints/last.pt or {self.CONFIG}; "
                              "run without --resume")
        saved = self.config()
        ignore = (*may_change, "run.name", "run.out_dir") + (("run.seed",) if new.run.seed is None else ())
        difference = first_difference(saved, new, ignore)
        if difference is not None:
            key, old, now = difference
            raise ConfigError(f"cannot resume {self.path}: '{key}' was {old!r} and is now {now!r}; "
                              f"only {' and '.join(may_change)} may change on --resume")
        return saved.replace(**{key: _dotted_get(new, key) for key in may_change})

    def read_json(self, name: str) -> Any:
        """A JSON file of the run; a damaged one raises :class:`~gcnretrieval.errors.RunFailed`."""
        return readers.read_json(self.path / name, "run file (JSON)", _DAMAGED_RUN, RunFailed)

    def write_json(self, name: str, value: Any) -> Path:
        return write_json(self.path / name, value)

    def write_text(self, name: str, text: str) -> Path:
        return write_text(self.path / name, text)

    def metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl``."""
        path = self.path / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def rewrite_metrics(self, rows: list[dict[str, Any]]) -> None:
        write_text(self.path / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in rows))

    def append_metrics(self, row: dict[str, Any]) -> None:
        with (self.path / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def checkpoint_path(self, name: str) -> Path:
        if name not in CHECKPOINTS:
            raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {name!r}")
        return self.path / "checkpoints" / f"{name}.pt"

    def save_checkpoint(self, name: str, state: dict[str, Any]) -> Path:
        """Write a checkpoint (tensors and plain containers only), flushed to disk, atomically."""
        with atomic_path(self.checkpoint_path(name)) as tmp:
            with tmp.open("wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
        return self.checkpoint_path(name)

    def load_checkpoint(self, name: str, map_location: Any = "cpu") -> dict[str, Any]:
        """A checkpoint, loaded with ``torch.load(weights_only=True)``."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            raise ConfigError(f"checkpoint {path} does not exist; train first with `gcnretrieval run`")
        return readers.load_torch(path, "gcnretrieval checkpoint", _DAMAGED_RUN, RunFailed, map_location=map_location)

    @contextmanager
    def capture_log(self) -> Iterator[None]:
        """Copy the package's log records of the block to ``train.log`` (those from before the
        folder existed included)."""
        handler = _RunLog(self.path / "train.log")
        logger = logging.getLogger("gcnretrieval")
        level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
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
            with self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(self.buffer)
            self.buffer = []


def _dotted_get(config: Config, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)
