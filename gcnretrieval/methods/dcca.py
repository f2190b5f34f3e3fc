r"""Deep CCA: Andrew, Arora, Bilmes and Livescu, *Deep Canonical Correlation Analysis*, ICML 2013.

Two networks, one per modality, are trained to maximise the total canonical correlation of
their outputs (:func:`gcnretrieval.losses.canonical_correlation.total_canonical_correlation`:
the sum of *all* singular values of
:math:`T = \hat{\Sigma}_{11}^{-1/2} \hat{\Sigma}_{12} \hat{\Sigma}_{22}^{-1/2}`, ridge
:math:`r_1 = r_2 = 10^{-4}` on the covariance diagonals). Retrieval uses the top-:math:`k`
canonical space of the outputs: a linear CCA on the network outputs
(:class:`gcnretrieval.models.running_cca.RunningCCA`), whose means and covariances are
running averages kept as buffers and updated in training-mode forward passes (momentum 0.1, like
BatchNorm), so that a checkpoint holds everything retrieval needs; ``embed_image`` and
``embed_text`` project onto its :math:`k` = ``out_channels`` directions (all of them by default).

What differs from the paper:

- Networks: each is a :class:`~gcnretrieval.models.Projector` (BatchNorm of the input, then
  ``num_layers`` Linear -> ReLU layers of width ``hidden_channels``) followed by a linear output
  layer; the paper uses its cube-root sigmoid and pretrains the layers as denoising autoencoders.
  The widths (three hidden layers of 1,024, output 10) are those of the public PyTorch
  implementation of DCCA (github.com/Michaelvll/DeepCCA, ``layer_sizes = [1024, 1024, 1024, 10]``);
  the paper's own networks were sized for its MNIST and XRMB experiments.
- Optimiser: the paper trains full-batch with L-BFGS; that implementation uses RMSprop (lr
  ``1e-3``, weight decay ``1e-5``); here the toolkit's Adam with the same learning rate, on
  batches of 512 pairs, the last incomplete batch of an epoch dropped
  (``train.drop_last``): DCCA's covariance estimates need large batches, and a small remainder
  batch (fewer rows than outputs) would give a near-singular one. That implementation's 800
  exceeds mirflickr-mini's 522 training pairs, which the trainer refuses; on mirflickr-mini
  every epoch is then one batch of 512 pairs, close to the paper's full batch.
- Training length: 100 epochs, the epoch selected on the validation split; the paper trains
  L-BFGS to convergence.
- The linear CCA after training uses the running statistics rather than one pass over the whole
  training set (they coincide when every epoch is one full batch and momentum is 1).
- Ridge: :math:`r_1 = r_2 = 10^{-4}`, fixed (the paper selects them on held-out data).

The objective follows the paper, not that implementation, where they differ
(``benchmarks/dcca_vs_reference.sh``): its top-:math:`k` loss takes the singular values as
:math:`\sqrt{\mathrm{eig}(T^\top T + r_1 I)}`, and its "all singular values" loss computes
:math:`\mathrm{tr}\sqrt{T^\top T}` with an element-wise square root (the sum of the column
norms of :math:`T`, not the trace norm).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from gcnretrieval.checks import check_positive, check_positive_int
from gcnretrieval.losses.canonical_correlation import RIDGE, CanonicalCorrelationLoss
from gcnretrieval.losses.registry import MethodObjective, register_objective
from gcnretrieval.methods.base import Method, register_method
from gcnretrieval.models.projectors import Projector
from gcnretrieval.models.registry import register_model
from gcnretrieval.models.running_cca import RunningCCA

__all__ = ["DCCAModel", "DCCAObjective", "DCCAOutput"]

HIDDEN_CHANNELS = 1024
NUM_LAYERS = 3
OUT_CHANNELS = 10
MOMENTUM = 0.1
BATCH_SIZE = 512
LEARNING_RATE = 1e-3
EPOCHS = 100


@dataclass
class DCCAOutput:
    """One forward pass of :class:`DCCAModel`.

    Attributes:
        image_embedding: image network outputs :math:`H_1`, :math:`(n, o)`.
        text_embedding: text network outputs :math:`H_2`, :math:`(n, o)`.
    """

    image_embedding: Tensor
    text_embedding: Tensor


@register_model("dcca")
class DCCAModel(nn.Module):
    r"""The two DCCA networks and the linear CCA on their outputs (see the module docstring).

    .. math::
        H_1 = f_1(X^v),\quad H_2 = f_2(X^t),\qquad
        \mathbf{z}^v = (f_1(\mathbf{x}^v) - \mathbf{m}_1)^\top A_1,\quad
        \mathbf{z}^t = (f_2(\mathbf{x}^t) - \mathbf{m}_2)^\top A_2

    Args:
        image_dim (int): image feature size.
        text_dim (int): text feature size.
        hidden_channels (int): width of the hidden layers. (default: ``1024``)
        num_layers (int): hidden layers per network. (default: ``3``)
        out_channels (int): network output size :math:`o`. (default: ``10``)
        top_k (int | None): canonical directions used for retrieval, at most :math:`o`.
            (default: ``None``: all :math:`o`)
        ridge (float): ridge of the linear CCA's covariances. (default: ``1e-4``)
        momentum (float): momentum of the running statistics. (default: ``0.1``)

    Shapes:
        - **input:** :math:`(n, d_v)` images and :math:`(n, d_t)` texts
        - **output:** :class:`DCCAOutput` with two :math:`(n, o)` fields; the embeddings are :math:`(n, k)`
    """

    def __init__(self, image_dim: int, text_dim: int, hidden_channels: int = HIDDEN_CHANNELS,
                 num_layers: int = NUM_LAYERS, out_channels: int = OUT_CHANNELS, top_k: int | None = None,
                 ridge: float = RIDGE, momentum: float = MOMENTUM) -> None:
        super().__init__()
        check_positive_int("hidden_channels", hidden_channels)
        check_positive_int("num_layers", num_layers)
        check_positive_int("out_channels", out_channels)
        check_positive("ridge", ridge)
        k = out_channels if top_k is None else check_positive_int("top_k", top_k)
        self.image_net = nn.Sequential(Projector(image_dim, hidden_channels, num_layers),
                                       nn.Linear(hidden_channels, out_channels))
        self.text_net = nn.Sequential(Projector(text_dim, hidden_channels, num_layers),
                                      nn.Linear(hidden_channels, out_channels))
        self.cca = RunningCCA(out_channels, out_channels, k, ridge=ridge, momentum=momentum)

    def reset_parameters(self) -> None:
        for net in (self.image_net, self.text_net):
            for layer in net:
                layer.reset_parameters()
        self.cca.reset_parameters()

    def forward(self, image: Tensor, text: Tensor) -> DCCAOutput:
        h1, h2 = self.image_net(image), self.text_net(text)
        if self.training:
            self.cca.update(h1, h2)
        return DCCAOutput(h1, h2)

    def embed_image(self, image: Tensor) -> Tensor:
        """Images in the top-:math:`k` canonical space, :math:`(n, k)`."""
        return self.cca.project(h1=self.image_net(image))[0]

    def embed_text(self, text: Tensor) -> Tensor:
        """Texts in the top-:math:`k` canonical space, :math:`(n, k)`."""
        return self.cca.project(h2=self.text_net(text))[1]


@register_objective("dcca")
class DCCAObjective(MethodObjective):
    r"""DCCA's objective: the negative total canonical correlation of the two network outputs,
    :math:`\mathcal{L} = -\mathrm{corr}(H_1, H_2)`; the labels are not used.

    Args:
        r1 (float): ridge of the image covariance. (default: ``1e-4``)
        r2 (float): ridge of the text covariance. (default: ``1e-4``)
        top_k (int | None): correlations summed (default ``None``: all, the paper's objective).
    """

    parts: ClassVar[tuple[str, ...]] = ("total", "correlation")

    def __init__(self, r1: float = RIDGE, r2: float = RIDGE, top_k: int | None = None) -> None:
        super().__init__()
        self.correlation = CanonicalCorrelationLoss(r1, r2, top_k)

    def forward(self, output: DCCAOutput, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        total = self.correlation(output, labels)
        return total, {"total": total.detach(), "correlation": -total.detach()}


register_method(Method(
    name="dcca",
    paper="Andrew, Arora, Bilmes, Livescu: Deep Canonical Correlation Analysis, ICML 2013",
    summary="two networks trained to maximise the total canonical correlation of their outputs; retrieval in the "
            "top-k canonical space of a linear CCA on those outputs",
    preset={"model.name": "dcca", "loss.name": "dcca",
            "model.hidden_channels": HIDDEN_CHANNELS, "model.num_layers": NUM_LAYERS,
            "model.out_channels": OUT_CHANNELS, "model.ridge": RIDGE, "model.momentum": MOMENTUM,
            "loss.r1": RIDGE, "loss.r2": RIDGE,
            "train.batch_size": BATCH_SIZE, "train.drop_last": True, "train.lr": LEARNING_RATE,
            "train.epochs": EPOCHS},
    uses_label_graph=False,
))
