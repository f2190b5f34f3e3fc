r"""The training loop: :class:`Trainer` steps one optimizer over mini-batches from a ``DataLoader``.

Each epoch draws the training pairs in a fresh order (``DistributedSampler`` seeded by
``run.seed`` and the epoch, also in a single process), updates the model and the
objective (the Circle-Soft weight :math:`\lambda` included) with one optimizer, scores the
selection split (``eval.select_on``) and hands the epoch's row to the callbacks. The last
incomplete batch is kept unless ``train.drop_last`` is set or it holds fewer than two
pairs per process (BatchNorm needs two). Loss values stay on the device during an epoch;
a non-finite loss ends the run at the end of that epoch with
:class:`~gcnretrieval.errors.RunFailed`, before anything of the epoch is saved. Under
``torchrun`` every rank takes its equal share of each global batch and the outputs are
gathered before the loss (:mod:`gcnretrieval.training.distributed`), so the run equals one
process. ``train.deterministic`` switches PyTorch to deterministic algorithms while
training, so that a resumed run ends where an uninterrupted one does. Float32 steps on a CPU
where oneDNN beats the BLAS library run their linear layers through it
(:func:`~gcnretrieval.models.onednn.onednn_linear_preferred`).
"""
from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DistributedSampler

from gcnretrieval.data.torch_dataset import PairDataset, batch_loader
from gcnretrieval.errors import ConfigError, RunFailed
from gcnretrieval.evaluation import evaluate_split
from gcnretrieval.formatting import maps_text
from gcnretrieval.models.onednn import onednn_linear, use_onednn_linear
from gcnretrieval.models.registry import DEFAULT_MODEL
import gcnretrieval.training.distributed as distributed
from gcnretrieval.training.callbacks import BestEpoch, Callback, EarlyStopping
from gcnretrieval.training.experiment import Experiment
from gcnretrieval.training.schedules import StepSchedule
from gcnretrieval.options import TrainOptions

log = logging.getLogger(__name__)

__all__ = ["Trainer", "build_optimizer"]



def build_optimizer(options: TrainOptions, parameters: Sequence[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD (momentum ``betas[0]``) over ``parameters``, with the fused kernel when asked and available."""
    params = [p for p in parameters if p.requires_grad]
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[options.optimizer]
    moments = {"momentum": options.betas[0]} if options.optimizer == "sgd" else {"betas": options.betas}
    arguments = {"lr": options.lr, "weight_decay": options.weight_decay, **moments}
    if options.fused_optimizer:
        try:
            return cls(params, fused=True, **arguments)
        except (RuntimeError, TypeError) as err:  # no fused kernel for this device or dtype
            log.info("fused %s update unavailable (%s); using the foreach one", options.optimizer, err)
    return cls(params, foreach=True, **arguments)


def _training_batches(sampler: DistributedSampler, batch_size: int, drop_last: bool) -> BatchSampler:
    """The sampler's pairs in batches of ``batch_size``; the last incomplete batch is dropped with
    ``drop_last`` or when it holds one pair, which BatchNorm cannot train on (the sampler's length is fixed)."""
    return BatchSampler(sampler, batch_size, drop_last or len(sampler) % batch_size == 1)


@contextmanager
def _process_settings(deterministic: bool, tf32: bool) -> Iterator[None]:
    """PyTorch's process-wide switches a recipe asks for, while training only."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    algorithms = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    flags = cudnn.deterministic, cudnn.benchmark, matmul.allow_tf32, cudnn.allow_tf32
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        cudnn.deterministic, cudnn.benchmark = True, False
    if tf32:
        matmul.allow_tf32 = cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(algorithms[0], warn_only=algorithms[1])
        cudnn.deterministic, cudnn.benchmark, matmul.allow_tf32, cudnn.allow_tf32 = flags


class Trainer:
    """Epochs of mini-batch training of an :class:`~gcnretrieval.training.Experiment`.

    Attributes:
        epoch: completed epochs.
        history: one dict per completed epoch (the rows of ``metrics.jsonl``).
        callbacks: those of the last :meth:`fit`, which own the selection and early-stopping state
            (read through :attr:`selection` and :attr:`stopped_early`).
    """

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.config = config = experiment.config
        self.model, self.objective, self.device = experiment.model, experiment.objective, experiment.device
        self.optimizer = build_optimizer(config.train, [*self.model.parameters(), *self.objective.parameters()])
        self.select_on = config.eval.select_on
        dataset = experiment.dataset
        self.selection_split = dataset.val if self.select_on == "val" else dataset.test
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        train = config.train
        if train.batch_size % self.world_size:
            raise ConfigError(f"train.batch_size = {train.batch_size} must be divisible by the number of "
                              f"processes ({self.world_size}); every process takes an equal share of each batch")
        if tf32_ignored := train.tf32 and TrainOptions.tf32_ignored_on(self.device.type):  # "auto" resolved elsewhere
            raise ConfigError(f"recipe key 'train.tf32' has no effect {tf32_ignored}; remove it")
        pairs = PairDataset(dataset.train, self.device)
        self.selection_pairs = PairDataset(self.selection_split, self.device)  # moved to the device once
        self.sampler = DistributedSampler(pairs, self.world_size, self.rank, shuffle=True, seed=config.run.seed)
        self.loader = batch_loader(pairs, _training_batches(self.sampler, train.batch_size // self.world_size,
                                                            train.drop_last))
        self.total_steps = train.steps or train.epochs * len(self.loader)
        self.epochs = math.ceil(self.total_steps / len(self.loader))
        self.scheduler = StepSchedule(self.optimizer, train.schedule, self.total_steps, train.warmup)
        self.step_module = distributed.wrap(self.model, self.objective, self.device) if self.world_size > 1 else None
        half = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(train.precision)
        self.autocast = torch.autocast(self.device.type, dtype=half or torch.float32, enabled=half is not None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=train.precision == "16-mixed")
        if train.precision == "16-mixed" and self.device.type == "cpu":
            log.warning('train.precision = "16-mixed" on the CPU: most CPUs have no fast float16 matrix '
                        'products (about 80x slower than float32 in benchmarks/RESULTS.md); "bf16-mixed" is the '
                        'fast half precision there')
        # float32 CPU products through oneDNN where it beats the BLAS; elsewhere the context would only cost time
        self.onednn = train.precision == "32" and use_onednn_linear(self.device)
        # the forward pass and the loss compiled (autograd traces their backward), or None
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        self.compiled_step = torch.compile(self._forward_loss, mode=mode) if train.compile else None
        self.epoch = self.step = 0  # completed epochs and optimisation steps
        self.history: list[dict[str, Any]] = []
        self.callbacks: list[Callback] = []
        self._restored: dict[str, dict[str, Any]] = {}  # callback states of a loaded checkpoint, until fit

    @property
    def selection(self) -> BestEpoch | None:
        """The :class:`~gcnretrieval.training.callbacks.BestEpoch` of the last :meth:`fit` (its
        ``best_epoch``, ``best_score`` and ``selection_note``), if it had one."""
        return next((callback for callback in self.callbacks if isinstance(callback, BestEpoch)), None)

    @property
    def stopped_early(self) -> int | None:
        """The epoch early stopping ended the last :meth:`fit` at, or ``None``."""
        return next((c.stopped_early for c in self.callbacks if isinstance(c, EarlyStopping)), None)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training (tensors and plain containers only): the
        :meth:`weights_state`, the optimizer, schedule, scaler and RNG states, the history and the
        callbacks' states (``"callbacks"``, by their ``state_key``)."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        callbacks = {**self._restored, **{c.state_key: c.state_dict() for c in self.callbacks if c.state_key}}
        return {**self.weights_state(), "format": 3, "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng,
                "history": self.history, "callbacks": callbacks}

    def weights_state(self) -> dict[str, Any]:
        """The model's and the objective's weights with the epoch they belong to and the selected
        epoch (``best_epoch``, ``best_score``): what evaluation, search and reports read
        (``checkpoints/best.pt``); no optimizer or RNG state."""
        selection = self.selection or BestEpoch()
        return {"format": 2, "epoch": self.epoch, "step": self.step, "model": self.model.state_dict(),
                "objective": self.objective.state_dict(), "best_epoch": selection.best_epoch,
                "best_score": selection.best_score, "select_on": self.select_on, "config": self.config.to_dict()}

    def checkpoint_bytes(self) -> tuple[int, int]:
        """The tensor bytes of a resume checkpoint (:meth:`state_dict`) and of the weights
        (:meth:`weights_state`), the optimizer's state counted from the parameters it updates, also
        before the first step (Adam and AdamW: two tensors per parameter, SGD with momentum: one;
        their few-byte step counters left out)."""
        weights = sum(t.nbytes for module in (self.model, self.objective) for t in module.state_dict().values())
        slots = 2 if self.config.train.optimizer in ("adam", "adamw") else int(self.config.train.betas[0] > 0)
        optimizer = slots * sum(p.nbytes for group in self.optimizer.param_groups for p in group["params"])
        return weights + optimizer, weights

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore model, objective (lambda), optimizer, schedule, scaler, epoch, history and RNG
        state; the callbacks' states are restored into the callbacks of the next :meth:`fit`."""
        for name in ("model", "objective", "optimizer", "scheduler", "scaler"):
            getattr(self, name).load_state_dict(state[name])
        self.scheduler.total_steps = self.total_steps  # a resumed run may train for longer
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = [dict(row) for row in state["history"]]
        self._restored = dict(state.get("callbacks", {"selection": state}))  # format 2: the selection only
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)

    # -- one epoch -----------------------------------------------------------------------
    def train_epoch(self, callbacks: Sequence[Callback] = ()) -> dict[str, float]:
        """One pass over the training pairs; the epoch means of the objective's parts (``loss_<part>``), its
        ``averaged`` values and its :meth:`~gcnretrieval.losses.base.MethodObjective.epoch_values`."""
        self.model.train()
        self.objective.train()
        self.sampler.set_epoch(self.epoch)
        losses, averaged = tuple(self.objective.parts), tuple(getattr(self.objective, "averaged", ()))
        sums = torch.zeros(len(losses) + len(averaged), dtype=torch.float64, device=self.device)
        bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        seen = 0
        for callback in callbacks:
            callback.on_epoch_start(self, len(self.loader))
        for step, (image, text, labels) in enumerate(islice(self.loader, self.total_steps - self.step)):
            total, parts = self._call_forward_loss(image, text, labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            self.objective.project_()
            rows = len(labels) * self.world_size
            seen += rows
            sums += torch.stack([parts[key] for key in (*losses, *averaged)]).double() * rows
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(parts["total"]), step, bad_step)
            for callback in callbacks:
                callback.on_batch_end(self, step)
        if int(bad_step) >= 0:
            raise RunFailed(f"the training loss became non-finite at epoch {self.epoch + 1}, batch {int(bad_step) + 1}; "
                            "lower train.lr or check the features' scale")
        values = [value / seen for value in sums.tolist()]
        means = {f"loss_{key}": value for key, value in zip(losses, values)}
        means.update(zip(averaged, values[len(losses):]))
        means.update(self.objective.epoch_values(means, self.epoch + 1))
        means.update(lr=self.optimizer.param_groups[0]["lr"], steps=self.step)
        return means

    def _forward_loss(self, image: Tensor, text: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The objective of one batch (of the global batch under ``torchrun``), the forward pass under autocast."""
        with self.autocast:
            if self.step_module is not None:
                return self.step_module(image, text, labels)
            return self.objective(self.model(image, text), labels)

    def _call_forward_loss(self, image: Tensor, text: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The compiled step when ``train.compile`` asks for it and it compiles here, else the eager one."""
        if self.compiled_step is not None:
            try:
                return self.compiled_step(image, text, labels)
            except Exception as err:  # a compiler or backend this machine lacks: train without compiling
                log.warning("train.compile: torch.compile cannot compile the step here (%s: %s); training without it",
                            type(err).__name__, str(err).splitlines()[0] if str(err) else "")
                self.compiled_step = None
        with onednn_linear(self.onednn):
            return self._forward_loss(image, text, labels)

    def evaluate_selection(self) -> dict[str, float]:
        """Selection-split mAPs, computed on rank 0 and shared with the other ranks."""
        scores = (evaluate_split(self.model, self.selection_pairs, self.device, self.config.eval.batch_size)
                  if self.rank == 0 else None)
        return distributed.broadcast_object(scores) if self.world_size > 1 else scores

    # -- the run -------------------------------------------------------------------------
    def fit(self, callbacks: Sequence[Callback] | None = None) -> list[dict[str, Any]]:
        """Train up to ``train.epochs`` epochs (or ``train.steps`` steps) or until a callback stops it
        (default callback: :class:`~gcnretrieval.training.callbacks.BestEpoch`); returns the history."""
        self.callbacks = callbacks = [BestEpoch()] if callbacks is None else list(callbacks)
        for callback in callbacks:
            if callback.state_key in self._restored:
                callback.load_state_dict(self._restored.pop(callback.state_key))
        info = log.info if self.rank == 0 else log.debug
        model = self.config.model["name"]  # the label-graph model is named by its label encoder
        info("training %s on %s: %d train / %d %s pairs, batch %d, epochs %d..%d",
             self.config.encoder.name if model == DEFAULT_MODEL else model, self.device,
             len(self.experiment.dataset.train), len(self.selection_split), self.select_on,
             self.config.train.batch_size, self.epoch + 1, self.epochs)
        for callback in callbacks:
            callback.on_fit_start(self)
        with _process_settings(self.config.train.deterministic, self.config.train.tf32):
            while (self.epoch < self.epochs and self.step < self.total_steps
                   and not any(callback.should_stop for callback in callbacks)):
                started = time.perf_counter()
                values = {"epoch": self.epoch + 1, **self.train_epoch(callbacks)}
                self.epoch += 1
                values.update({f"{self.select_on}_{key}": value for key, value in self.evaluate_selection().items()})
                values["seconds"] = time.perf_counter() - started
                # the row: non-finite values as None (null in metrics.jsonl); the log line shows them as nan
                row = {key: None if isinstance(v, float) and not math.isfinite(v) else v for key, v in values.items()}
                self.history.append(row)
                for callback in callbacks:
                    callback.on_epoch_end(self, row)
                weight = f", lambda {values['lambda']:.3f}" if "lambda" in values else ""
                info("epoch %d/%d: loss %.4f%s, %s mAP %s%s (%.1f s)", self.epoch, self.epochs, values["loss_total"],
                     weight, self.select_on, maps_text(values, f"{self.select_on}_"), " *" if row.get("selected") else "",
                     values["seconds"])
        for callback in callbacks:
            callback.on_fit_end(self)
        return self.history
