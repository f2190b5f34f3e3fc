"""Model complexity: parameters and FLOPs per sample, counted the same way for every encoder.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
the dense products (``mm``, ``addmm``, ``bmm``, convolutions, attention) at 2 FLOPs per
multiply-add; element-wise operations and PyG's sparse gather/scatter message passing
are not counted (on a label graph of tens of nodes they are a small fraction).

Two counts per model, both of the model's *forward* pass only (no backward, no loss):

- ``flops_per_sample``: the forward pass of one training step on a batch of ``B``
  pairs (training mode: projectors, both generators, both discriminators, and the label
  encoder, which runs once per batch), divided by ``B``;
- ``flops_batch_of_one``: the forward pass on a single pair (evaluation mode), so the
  label encoder is counted in full for that one sample. This is the convention that
  profiling a model on one input gives, and the one the paper's Table 2 figures are
  comparable to.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "model_flops"]


def count_flops(module: nn.Module, *inputs: Tensor) -> int:
    """FLOPs of ``module(*inputs)`` (forward only, under ``torch.no_grad``)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    return int(counter.get_total_flops())


def model_flops(model: nn.Module, image: Tensor, text: Tensor) -> dict[str, float]:
    """``flops_per_sample`` (training-step forward / batch size) and ``flops_batch_of_one``.

    Args:
        model: a :class:`~gcnretrieval.models.CrossModalModel`.
        image: a training batch of image features ``(B, d_v)``, ``B >= 2``.
        text: the paired text features ``(B, d_t)``.
    """
    was_training = model.training
    try:
        model.train()
        batch = count_flops(model, image, text)
        model.eval()
        single = count_flops(model, image[:1], text[:1])
    finally:
        model.train(was_training)
    return {"flops_per_sample": batch / image.size(0), "flops_batch_of_one": float(single),
            "flops_batch": float(batch), "batch_size": int(image.size(0))}
