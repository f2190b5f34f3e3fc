r"""Data-parallel training over several processes (``torchrun``), equal to one process.

Launch with PyTorch's own launcher::

    torchrun --nproc_per_node 2 -m gcnretrieval run recipes/mirflickr_l2gcn.toml

Every process builds the same seeded experiment; PyTorch's ``DistributedSampler`` deals
each rank its share of every global batch of ``train.batch_size`` pairs (which must be
divisible by the number of processes; the sampler repeats a few pairs when the training
split is not). The model and the objective (with its
Circle-Soft weight :math:`\lambda`) are wrapped together in one
``DistributedDataParallel`` module. So that the run equals a single process with the
same global batch:

- the per-pair outputs and the labels are all-gathered *with their gradient*
  (:func:`gather_rows`) before the objective, so the batch-global circle and
  soft-contrastive losses see all :math:`n \times n` pairs of the global batch, and
  every rank computes the same global loss;
- BatchNorm normalises with the statistics of the whole global batch
  (:func:`convert_batchnorm`: ``SyncBatchNorm`` on CUDA, :class:`GlobalBatchNorm1d`
  elsewhere, since ``SyncBatchNorm`` runs on GPUs only).

Gradient scale: the backward of :func:`gather_rows` sums the (identical) gradients of
every rank, so each rank back-propagates ``world_size`` times its share;
``DistributedDataParallel`` then averages over ranks, which gives exactly the
single-process gradient, also for parameters every rank uses whole (the label encoder,
:math:`\lambda`). Logging of epochs, checkpoints, metrics and evaluation happen on rank 0.
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

log = logging.getLogger(__name__)

__all__ = [
    "DistributedStep",
    "GlobalBatchNorm1d",
    "broadcast_object",
    "convert_batchnorm",
    "gather_rows",
    "process_group",
    "is_main_process",
    "rank",
    "shutdown",
    "world_size",
    "wrap",
]


def world_size() -> int:
    """Number of processes of the run (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 (and in a single-process run)."""
    return rank() == 0


@contextmanager
def process_group(device: str = "auto") -> Iterator[None]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1) for the block, then leave it.

    Uses NCCL when the run trains on CUDA, gloo otherwise. Does nothing in a single
    process or when a group was joined already (the caller then owns it).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        yield
        return
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    log.info("joined process group: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        shutdown(wait_for_others=succeeded)


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(wait_for_others: bool = True) -> None:
    """Leave the process group, if one was joined.

    With ``wait_for_others`` (after a run that succeeded) every rank first waits for the
    others: tearing gloo down while another rank still talks to it can abort that rank.
    After an error no rank waits, since the others may never arrive. Unreachable
    ``DistributedDataParallel`` wrappers are collected first: they hold the process group,
    and one left for interpreter shutdown keeps gloo's threads alive past it (an abort).
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


class _GatherRows(torch.autograd.Function):
    """All-gather of row blocks of known sizes; backward sums the gradient over ranks."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: tuple[int, ...]) -> Tensor:
        me = dist.get_rank()
        ctx.sizes, ctx.rank = sizes, me
        largest = max(sizes)
        padded = tensor.new_zeros((largest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        blocks = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(blocks, padded.contiguous())
        return torch.cat([block[:size] for block, size in zip(blocks, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_rows(tensor: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """Rows of every rank's ``tensor`` in rank order, differentiable.

    Args:
        tensor: this rank's rows, ``(sizes[rank], ...)``.
        sizes: every rank's row count (known to all ranks from the shard sizes).

    Returns:
        ``(sum(sizes), ...)``; the backward pass sums the incoming gradients of all ranks
        and returns this rank's rows of the sum.
    """
    return _GatherRows.apply(tensor, tuple(int(s) for s in sizes))


class _SumOverRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class GlobalBatchNorm1d(nn.BatchNorm1d):
    r"""BatchNorm1d whose training statistics cover the rows of every rank

    .. math::
        \mu = \frac{1}{N} \sum_{r} \sum_{i \in r} \mathbf{x}_i, \qquad
        \sigma^2 = \frac{1}{N} \sum_{r} \sum_{i \in r} (\mathbf{x}_i - \mu)^2, \qquad
        \mathbf{y}_i = \boldsymbol{\gamma} \odot \frac{\mathbf{x}_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \boldsymbol{\beta}

    with :math:`N` the global batch: two all-reduces (sum, then centred squares) per call,
    with gradient. Works on any backend (gloo included); outside training, or in a
    single process, it is plain ``BatchNorm1d``. Same state-dict keys as ``BatchNorm1d``.

    Shapes:
        - **input:** :math:`(n, C)`; **output:** :math:`(n, C)`
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        if x.dim() != 2:
            raise ValueError(f"GlobalBatchNorm1d expects a 2-D input, got {x.dim()}-D")
        count = _SumOverRanks.apply(x.new_tensor([float(x.shape[0])])).detach()
        mean = _SumOverRanks.apply(x.sum(dim=0)) / count
        centred = x - mean
        var = _SumOverRanks.apply((centred * centred).sum(dim=0)) / count
        y = centred * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1).clamp_min(1.0))
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        return y


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers replaced by global-batch ones: ``SyncBatchNorm`` on CUDA, else :class:`GlobalBatchNorm1d`.

    Parameters and buffers are kept (same tensors), so checkpoints are unchanged.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm1d) and not isinstance(module, GlobalBatchNorm1d):
        new = GlobalBatchNorm1d(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module


def _gather_output(output: Any, sizes: tuple[int, ...]) -> Any:
    """A copy of a model output with every per-pair field gathered over ranks."""
    rows = sizes[rank()]
    changes = {}
    for field in fields(output):
        value = getattr(output, field.name)
        if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == rows and field.name != "label_embedding":
            changes[field.name] = gather_rows(value, sizes)
    return replace(output, **changes)


class DistributedStep(nn.Module):
    """Model and objective in one module (one ``DistributedDataParallel`` over both).

    ``forward(image, text, labels, sizes)`` runs the model on this rank's shard, gathers
    the per-pair outputs and the labels of all shards, and returns the objective's
    ``(total, parts)`` of the global batch.
    """

    def __init__(self, model: nn.Module, objective: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, image: Tensor, text: Tensor, labels: Tensor, sizes: tuple[int, ...]) -> tuple[Tensor, dict]:
        output = self.model(image, text)
        output = _gather_output(output, sizes)
        labels = gather_rows(labels, sizes)
        return self.objective(output, labels)


def wrap(model: nn.Module, objective: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(DistributedStep(model, objective))`` with global BatchNorm."""
    convert_batchnorm(model, device)
    step = DistributedStep(model, objective)
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(step, device_ids=device_ids, find_unused_parameters=True)
