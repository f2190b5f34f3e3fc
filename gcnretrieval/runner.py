"""Runs: a recipe in, a run directory out (the library twin of ``gcnretrieval run``).

``run(recipe)`` writes ``runs/<run.name>/`` (or ``out``)::

    recipe.toml            the recipe as given (a dict recipe is written as TOML)
    config.resolved.json   every key with its value, the seed actually used, data paths made absolute
    environment.json       Python, torch, torch_geometric, numpy versions and the device
    train.log              the log of the run
    metrics.jsonl          one line per epoch: loss terms (epoch means), lambda, selection mAPs, seconds
    final_metrics.json     test mAPs of the selected checkpoint, the selected epoch and split
    checkpoints/last.pt    after every epoch (model, objective, optimizer, epoch, RNG states)
    checkpoints/best.pt    the selected epoch
    figures/loss.png, figures/map.png
    report.md

Nothing is written until the recipe, the data, the label graph and the model have been
built: a bad input raises its one-line error and leaves no directory behind. The
directory itself is assembled under a temporary name next to its final place and
renamed into place, so it appears complete or not at all. An existing run directory is
never overwritten; ``resume=True`` continues it from ``checkpoints/last.pt`` (only
``train.epochs`` and ``train.device`` may differ from the saved configuration).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gcnretrieval.config import Config, config_from_dict, load_config, parse_override, read_recipe, to_toml
from gcnretrieval.errors import ConfigError, GcnRetrievalError
from gcnretrieval.training import distributed

log = logging.getLogger(__name__)

__all__ = ["RunResult", "cpu_model", "create_run_directory", "environment", "evaluate", "load_run", "resolve_paths", "run"]

CHECKPOINTS = ("best", "last")
#: keys a resumed run may change: train for longer, or continue on another device
_RESUMABLE_CHANGES = ("train.epochs", "train.device")


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes:
        run_dir: the run directory.
        test: ``{"i2t_map", "t2i_map", "avg_map"}`` of the selected checkpoint on the test split.
        selected_epoch: the epoch whose checkpoint was selected.
        selected_on: ``"val"`` or ``"test"``.
        history: the rows of ``metrics.jsonl``.
        config: the resolved configuration.
    """

    run_dir: Path
    test: dict[str, float]
    selected_epoch: int | None
    selected_on: str
    history: list[dict[str, Any]] = field(default_factory=list)
    config: Config | None = None

    def to_dict(self) -> dict[str, Any]:
        """The content of ``final_metrics.json`` plus the run directory."""
        return {"run_dir": str(self.run_dir), "test": dict(self.test), "selected_epoch": self.selected_epoch,
                "selected_on": self.selected_on}


# --- helpers --------------------------------------------------------------------------


def _dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``train__epochs`` -> ``train.epochs`` (keyword-argument spelling of dotted keys)."""
    return {key.replace("__", "."): value for key, value in overrides.items()}


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, value: Any) -> None:
    _write_text(path, json.dumps(value, indent=2) + "\n")


def resolve_paths(config: Config) -> Config:
    """Data paths made absolute (the catalog default ``data/<dataset>/`` spelled out)."""
    data = config.data
    if data.source != "files":
        return config
    path = data.path
    if path is None and data.dataset is not None:
        path = str(Path("data") / data.dataset.lower())
    if path is None:
        return config
    return replace(config, data=replace(data, path=str(Path(path).expanduser().resolve())))


def cpu_model() -> str:
    """The processor's name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: Any) -> dict[str, Any]:
    """Versions of the software a run used, its device and the machine's processor."""
    import numpy
    import torch
    import torch_geometric

    from gcnretrieval import __version__

    info: dict[str, Any] = {
        "gcnretrieval": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if str(device).startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


@contextmanager
def create_run_directory(run_dir: Path, recipe_path: str | Path | None, raw: Mapping[str, Any], config: Config,
                         device: Any, *, subdirs: tuple[str, ...] = ()) -> Iterator[Path]:
    """Assemble a new run directory under a temporary name next to ``run_dir``; rename it into place.

    The staging directory holds ``recipe.toml`` (a copy of ``recipe_path``, or ``raw`` as
    TOML when it is ``None``), ``config.resolved.json``, ``environment.json`` (for
    ``device``), an empty ``metrics.jsonl`` and the empty folders ``subdirs``; it is
    yielded so the caller can add files, then renamed to ``run_dir`` when the block ends
    without error. On any error it is removed, so ``run_dir`` appears complete or not at
    all; an ``OSError`` (``run_dir`` already there, say) becomes a :class:`ConfigError`.
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".tmp", dir=run_dir.parent))
    try:
        if recipe_path is not None:
            shutil.copyfile(recipe_path, staging / "recipe.toml")
        else:
            _write_text(staging / "recipe.toml", to_toml(raw))
        _write_json(staging / "config.resolved.json", config.to_dict())
        _write_json(staging / "environment.json", environment(device))
        (staging / "metrics.jsonl").touch()
        for name in subdirs:
            (staging / name).mkdir()
        yield staging
        os.rename(staging, run_dir)  # fails if the directory appeared meanwhile
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"cannot create run directory {run_dir} ({err}); choose another --name or --out") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class _RunLog(logging.Handler):
    """Collect the package's log records during a run; once the run directory exists,
    write them (those from before included) to its ``train.log``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.buffer: list[str] = []
        self.file: Any = None
        self.logger = logging.getLogger("gcnretrieval")

    def open(self, path: Path) -> None:
        """Start writing to ``path`` (appending), beginning with the buffered lines."""
        self.file = path.open("a", encoding="utf-8")
        self.file.write("".join(line + "\n" for line in self.buffer))
        self.file.flush()
        self.buffer = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if self.file is None:
            self.buffer.append(line)
        else:
            self.file.write(line + "\n")
            self.file.flush()

    def __enter__(self) -> _RunLog:
        self.level_before = self.logger.level
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_before)
        if self.file is not None:
            self.file.close()


def _read_history(path: Path, upto: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if int(row["epoch"]) <= upto]


def _check_resumable(config: Config, run_dir: Path) -> Config:
    """The saved configuration, with the new ``train.epochs``; other changes are refused."""
    saved_path = run_dir / "config.resolved.json"
    if not (run_dir / "checkpoints" / "last.pt").is_file() or not saved_path.is_file():
        raise ConfigError(f"nothing to resume in {run_dir}: no checkpoints/last.pt or config.resolved.json; run without --resume")
    saved = config_from_dict(json.loads(saved_path.read_text(encoding="utf-8")))
    new = config
    if new.run.seed is None:
        new = replace(new, run=replace(new.run, seed=saved.run.seed))
    new = replace(new, run=replace(new.run, name=saved.run.name, out_dir=saved.run.out_dir))
    new = resolve_paths(new)
    a = _flatten(saved.to_dict())
    b = _flatten(new.to_dict())
    for key in sorted(set(a) | set(b)):
        if key not in _RESUMABLE_CHANGES and a.get(key) != b.get(key):
            raise ConfigError(
                f"cannot resume {run_dir}: '{key}' was {a.get(key)!r} and is now {b.get(key)!r}; "
                f"only {' and '.join(_RESUMABLE_CHANGES)} may change on --resume"
            )
    return replace(saved, train=replace(saved.train, epochs=new.train.epochs, device=new.train.device))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _report(run_dir: Path, config: Config, experiment: Any, final: dict[str, Any], history: list[dict[str, Any]]) -> str:
    data = experiment.dataset
    test = final["test"]
    sizes = ", ".join(f"{name} {len(split)}" for name, split in data.splits())
    lines = [
        f"# Run `{config.run.name}`",
        "",
        f"- data: `{data.name}` ({sizes} pairs; image {data.image_dim}-d, text {data.text_dim}-d, {data.num_labels} labels)",
        f"- label graph: `{config.graph.kind}`, threshold {config.graph.threshold}, node features "
        f"`{config.graph.node_features}`{', edges dropped (self-loops only)' if config.graph.drop_edges else ''}",
        f"- encoder: `{config.encoder.name}`, depth {config.encoder.num_layers}; common dimension {config.model.common_dim}",
        f"- objective: condition `{config.loss.condition}`, alpha {config.loss.alpha}, beta {config.loss.beta}, "
        f"theta {config.loss.theta}",
        f"- training: {config.train.optimizer}, lr {config.train.lr}, batch {config.train.batch_size}, "
        f"{len(history)} epoch(s), seed {config.run.seed}, device `{experiment.device}`",
        f"- selection: epoch {final['selected_epoch']} by mean mAP on `{final['selected_on']}`"
        + (" (test-set selection, for parity with the reference code only)" if final["selected_on"] == "test" else ""),
        "",
        "| test mAP@all | image → text | text → image | mean |",
        "|---|---|---|---|",
        f"| selected checkpoint | {test['i2t_map']:.4f} | {test['t2i_map']:.4f} | {test['avg_map']:.4f} |",
        "",
        "![loss](figures/loss.png) ![mAP](figures/map.png)",
        "",
    ]
    return "\n".join(lines)


# --- public API -----------------------------------------------------------------------


def run(
    recipe: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | list[str] | tuple[str, ...] | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
    **keyword_overrides: Any,
) -> RunResult:
    """Train a recipe and write its run directory.

    Args:
        recipe: path of a TOML recipe, or the same structure as a nested dict.
        overrides: dotted keys, ``{"train.epochs": 2}`` (values as given), or
            ``["train.epochs=2", "encoder.name=gcn"]`` (values parsed as on the command line).
        out: the run directory (default ``<run.out_dir>/<run.name>``).
        name: replaces ``run.name``.
        resume: continue the run in the existing directory from ``checkpoints/last.pt``.
        progress: show a progress bar; ``None`` (default) when stderr is a terminal.
        **keyword_overrides: dotted keys spelt with ``__``: ``train__epochs=2``.

    Returns:
        A :class:`RunResult` (test mAPs of the selected checkpoint, run directory, history).

    Raises:
        GcnRetrievalError: a bad recipe, data, graph or model (before anything is
            written), an existing run directory without ``resume``, or nothing to resume.
    """
    from gcnretrieval.training import distributed

    is_path = isinstance(recipe, (str, Path))
    raw = read_recipe(recipe) if is_path else dict(recipe)
    if overrides is None:
        changes = {}
    elif isinstance(overrides, Mapping):
        changes = dict(overrides)
    else:
        changes = dict(parse_override(text) for text in overrides)
    changes.update(_dotted(keyword_overrides))
    if name is not None:
        changes["run.name"] = name
    config = load_config(raw, changes)
    run_dir = Path(out) if out is not None else Path(config.run.out_dir) / config.run.name

    joined = distributed.init_from_environment(config.train.device)  # under torchrun
    succeeded = False
    try:
        if distributed.world_size() > 1:
            config = _agree_on_config(config, run_dir, resume)
            if not distributed.is_main_process():
                result = _follow(config, run_dir, resume)
                succeeded = True
                return result
        elif resume:
            config = _check_resumable(config, run_dir)
        else:
            config = _start_config(config, run_dir)
        result = _lead(config, raw, recipe if is_path else None, run_dir, resume, progress)
        succeeded = True
        return result
    finally:
        if joined:
            distributed.shutdown(wait_for_others=succeeded)


def _start_config(config: Config, run_dir: Path) -> Config:
    from gcnretrieval.train import resolve_seed

    if run_dir.exists():
        raise ConfigError(f"run directory {run_dir} already exists; pass --resume to continue it, or choose another --name or --out")
    return resolve_paths(resolve_seed(config))


def _agree_on_config(config: Config, run_dir: Path, resume: bool) -> Config:
    """Rank 0 resolves the configuration (seed, resume checks) and every rank uses it, or raises its error."""
    message: tuple[str, Any] = ("ok", None)
    if distributed.is_main_process():
        try:
            config = _check_resumable(config, run_dir) if resume else _start_config(config, run_dir)
            message = ("ok", config.to_dict())
        except GcnRetrievalError as err:
            message = ("error", str(err))
    kind, value = distributed.broadcast_object(message)
    if kind == "error":
        raise ConfigError(value)
    return config_from_dict(value)


def _tune_host_memory(experiment: Any) -> None:
    """CPU training keeps freed host memory for reuse (``train.reuse_host_memory``)."""
    from gcnretrieval.training.host_memory import keep_freed_host_memory

    if experiment.device.type == "cpu" and experiment.config.train.reuse_host_memory:
        keep_freed_host_memory()


def _follow(config: Config, run_dir: Path, resume: bool) -> RunResult:
    """A rank other than 0: train its shards in step with rank 0, write nothing."""
    from gcnretrieval.train import Trainer, build_experiment
    from gcnretrieval.training import load_checkpoint

    experiment = build_experiment(config)
    _tune_host_memory(experiment)
    trainer = Trainer(experiment, run_dir=None, progress=False)
    if resume:
        trainer.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt", map_location=experiment.device))
    history = trainer.fit()
    test, selected_epoch = distributed.broadcast_object(None)  # rank 0's final evaluation
    return RunResult(run_dir, test, selected_epoch, config.eval.select_on, history, experiment.config)


def _lead(config: Config, raw: dict[str, Any], recipe_path: str | Path | None, run_dir: Path, resume: bool,
          progress: bool | None) -> RunResult:
    """Train and write the run directory (the only process, or rank 0)."""
    from gcnretrieval.train import Trainer, build_experiment, evaluate_split
    from gcnretrieval.training import load_checkpoint, plot_history

    with _RunLog() as run_log:
        log.info("%s run %s in %s (seed %d)", "resuming" if resume else "starting", config.run.name, run_dir,
                 config.run.seed)
        experiment = build_experiment(config)  # every user error surfaces here, before any write
        config = experiment.config
        _tune_host_memory(experiment)
        trainer = Trainer(experiment, run_dir=None, progress=progress)

        if resume:
            state = load_checkpoint(run_dir / "checkpoints" / "last.pt", map_location=experiment.device)
            trainer.load_state_dict(state)
            trainer.history = _read_history(run_dir / "metrics.jsonl", trainer.epoch) or trainer.history
            _write_text(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in trainer.history))
            _write_json(run_dir / "config.resolved.json", config.to_dict())
        else:
            with create_run_directory(run_dir, recipe_path, raw, config, experiment.device,
                                      subdirs=("checkpoints", "figures")):
                pass
        trainer.run_dir = run_dir
        run_log.open(run_dir / "train.log")
        history = trainer.fit()
        best = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=experiment.device)
        experiment.model.load_state_dict(best["model"])
        test = evaluate_split(experiment.model, experiment.dataset.test, experiment.device, config.eval.batch_size)
        final = {"test": test, "selected_epoch": best["best_epoch"], "selected_on": config.eval.select_on,
                 "epochs_trained": trainer.epoch}
        _write_json(run_dir / "final_metrics.json", final)
        plot_history(history, run_dir / "figures", selected_epoch=final["selected_epoch"])
        _write_text(run_dir / "report.md", _report(run_dir, config, experiment, final, history))
        log.info("selected epoch %s on %s; test mAP i2t %.4f t2i %.4f avg %.4f", final["selected_epoch"],
                 final["selected_on"], test["i2t_map"], test["t2i_map"], test["avg_map"])
    if distributed.world_size() > 1:
        distributed.broadcast_object((test, final["selected_epoch"]))
    return RunResult(run_dir, test, final["selected_epoch"], final["selected_on"], history, config)


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> tuple[Any, dict[str, Any]]:
    """Rebuild a run's data, label graph and model from ``config.resolved.json`` and load a checkpoint.

    Args:
        run_dir: a directory written by :func:`run`.
        checkpoint: ``"best"`` (the selected epoch, default) or ``"last"``.
        device: ``"auto"`` (default: CUDA when available, else CPU), ``"cpu"``, ``"cuda:N"``.

    Returns:
        ``(experiment, state)``: the :class:`~gcnretrieval.train.Experiment` with the
        checkpoint's weights in its model, and the checkpoint's content.
    """
    from gcnretrieval.train import build_experiment, resolve_device
    from gcnretrieval.training import load_checkpoint

    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    run_dir = Path(run_dir)
    config_path = run_dir / "config.resolved.json"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.resolved.json); give the folder `gcnretrieval run` wrote")
    config = config_from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    experiment = build_experiment(config, device=resolve_device(device))
    state = load_checkpoint(run_dir / "checkpoints" / f"{checkpoint}.pt", map_location=experiment.device)
    experiment.model.load_state_dict(state["model"])
    return experiment, state


def evaluate(run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> dict[str, Any]:
    """Test mAPs of a run's checkpoint; also written to ``<run_dir>/evaluation_<checkpoint>.json``.

    The data, label graph and model are rebuilt from ``config.resolved.json`` (the data
    must still be where the run read them).

    Args:
        run_dir: a directory written by :func:`run`.
        checkpoint: ``"best"`` (the selected epoch, default) or ``"last"``.
        device: where to evaluate (default ``"auto"``: CUDA when available, else CPU),
            whatever device the run trained on.

    Returns:
        ``{"checkpoint", "epoch", "test": {"i2t_map", "t2i_map", "avg_map"}}``.
    """
    from gcnretrieval.train import evaluate_split

    run_dir = Path(run_dir)
    experiment, state = load_run(run_dir, checkpoint, device)
    config = experiment.config
    test = evaluate_split(experiment.model, experiment.dataset.test, experiment.device, config.eval.batch_size)
    result = {"checkpoint": checkpoint, "epoch": int(state["epoch"]), "test": test}
    _write_json(run_dir / f"evaluation_{checkpoint}.json", result)
    return result
