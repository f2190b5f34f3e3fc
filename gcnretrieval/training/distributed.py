r"""Data-parallel training over several processes (``torchrun``), equal to one process.

``torchrun --nproc_per_node 2 -m gcnretrieval run RECIPE``: every process builds the same
seeded experiment and ``DistributedSampler`` deals each rank its equal share of every
global batch. Model and objective train as one ``DistributedDataParallel`` module; the
per-pair outputs and labels are all-gathered *with their gradient* (:func:`gather_rows`)
so every rank computes the loss of the whole global batch, and BatchNorm uses the global
batch's statistics (:func:`convert_batchnorm`). The backward of :func:`gather_rows` sums
the ranks' identical gradients and DDP averages them, which gives exactly the
single-process gradient, also for the parameters every rank uses whole (the label encoder,
:math:`\lambda`). Rank 0 alone evaluates, logs and writes.
"""
from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from gcnretrieval.losses import CONDITIONS

log = logging.getLogger(__name__)

__all__ = ["DistributedStep", "GlobalBatchNorm1d", "broadcast_object", "convert_batchnorm", "gather_rows",
           "launched", "process_group", "rank", "shutdown", "world_size", "wrap"]


def world_size() -> int:
    """Number of processes of the run (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launched() -> bool:
    """Whether ``torchrun`` started this process as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def process_group(device: str = "auto") -> Iterator[None]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1) for the block, then leave it.

    Uses NCCL when the run trains on CUDA, gloo otherwise. Does nothing in a single
    process or when a group was joined already (the caller then owns it).
    """
    if not launched() or not dist.is_available() or dist.is_initialized():
        yield
        return
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    log.info("joined process group: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())
    try:
        yield
    except BaseException:
        shutdown(wait_for_others=False)
        raise
    shutdown()


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(wait_for_others: bool = True) -> None:
    """Leave the process group, if one was joined.

    After a run that succeeded every rank first waits for the others (tearing gloo down while
    another rank still talks to it aborts that rank); after an error none waits. Unreachable
    DDP wrappers are collected first: one left for interpreter shutdown aborts gloo too.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        blocks = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(blocks, tensor.contiguous())
        return torch.cat(blocks)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        summed = grad.contiguous().clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        return summed.chunk(world_size())[rank()]


def gather_rows(tensor: Tensor) -> Tensor:
    """The rows of every rank's ``tensor`` (as many on each rank) in rank order; the backward pass
    sums the incoming gradients of all ranks and returns this rank's rows of the sum."""
    return _GatherRows.apply(tensor)


class GlobalBatchNorm1d(nn.BatchNorm1d):
    r"""BatchNorm1d whose training statistics cover the rows of every rank

    .. math::
        \mu = \frac{1}{N} \sum_{r} \sum_{i \in r} \mathbf{x}_i, \qquad
        \sigma^2 = \frac{1}{N} \sum_{r} \sum_{i \in r} (\mathbf{x}_i - \mu)^2, \qquad
        \mathbf{y}_i = \boldsymbol{\gamma} \odot \frac{\mathbf{x}_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \boldsymbol{\beta}

    over the :math:`N` rows of the global batch, on any backend (``SyncBatchNorm`` needs a GPU):
    the rows of every rank are gathered with their gradient (:func:`gather_rows`, as many on each
    rank), ``BatchNorm1d`` itself normalises them and updates the running statistics, and each
    rank keeps its own rows. Outside training, or in one process, it is plain ``BatchNorm1d``,
    with the same state-dict keys.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        return super().forward(gather_rows(x)).chunk(world_size())[rank()]


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers replaced by global-batch ones (``SyncBatchNorm`` on CUDA, else
    :class:`GlobalBatchNorm1d`, which only replaces ``forward``: the layers keep their
    parameters, buffers and mode)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm1d):
            layer.__class__ = GlobalBatchNorm1d
    return module


def _gather_output(output: Any, rows: int) -> Any:
    """A copy of a model output with every per-pair field (``rows`` rows) gathered over ranks."""
    changes = {}
    for field in fields(output):
        value = getattr(output, field.name)
        if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == rows and field.name != "label_embedding":
            changes[field.name] = gather_rows(value)
    return replace(output, **changes)


class DistributedStep(nn.Module):
    """Model and objective as one module: the model on this rank's share, its per-pair outputs and
    the labels gathered over ranks, the objective's ``(total, parts)`` of the global batch."""

    def __init__(self, model: nn.Module, objective: nn.Module) -> None:
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, image: Tensor, text: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        output = _gather_output(self.model(image, text), len(labels))
        return self.objective(output, gather_rows(labels))


def wrap(model: nn.Module, objective: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(DistributedStep(model, objective))`` with global BatchNorm.

    Every parameter has a gradient unless an ablation condition drops a loss term (the
    discriminators, generators or label encoder feed only the dropped term): only then, and for the
    objectives of other methods, does DDP search for unused parameters, an extra pass over the
    autograd graph every step.
    """
    convert_batchnorm(model, device)
    step = DistributedStep(model, objective)
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    terms = getattr(objective, "active_terms", None)  # another method's objective: DDP searches, to be safe
    unused = terms is None or len(terms) < len(CONDITIONS["all"])
    return DistributedDataParallel(step, device_ids=device_ids, find_unused_parameters=unused)
