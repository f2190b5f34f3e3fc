r"""Self-supervision of a learned label graph by its co-occurrence prior (ALGCN)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gcnretrieval.checks import check_positive_int
from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import check_interval, check_positive, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import upcast


def adjacency_supervision_loss(adjacency: Tensor, prior: Tensor, negatives: Tensor, cap: float = 0.5) -> Tensor:
    r"""Mean squared error of a learned adjacency against its prior, with sampled negatives.

    .. math::
        T^{(k)} = \min\big(A + N^{(k)},\; c\big), \qquad
        \mathcal{L}_{sup} = \sum_{k=1}^{K} \frac{1}{C^2} \sum_{i,j}
            \big(\hat{A}_{ij} - T^{(k)}_{ij}\big)^2

    :math:`\hat{A}` is the (normalised) adjacency the graph layers propagate with,
    :math:`A` the co-occurrence prior and :math:`N^{(k)} \in \{0, 1\}^{C \times C}` the
    :math:`k`-th mask of sampled pairs: every edge of the prior and every sampled pair
    gets the target :math:`c` (for prior weights :math:`\ge c`), the other pairs 0.

    Args:
        adjacency: :math:`\hat{A}`, the learned adjacency.
        prior: :math:`A`, the prior adjacency (no gradient flows to it).
        negatives: the masks :math:`N^{(k)}`, one :math:`(C, C)` matrix or a
            :math:`(K, C, C)` stack.
        cap (float): :math:`c`. (default: ``0.5``)

    Shapes:
        - **adjacency, prior:** :math:`(C, C)`; **negatives:** :math:`(C, C)` or
          :math:`(K, C, C)`
        - **output:** scalar
    """
    check_positive("cap", cap)
    if not isinstance(adjacency, Tensor) or adjacency.dim() != 2 or adjacency.size(0) != adjacency.size(1):
        shape = tuple(adjacency.shape) if isinstance(adjacency, Tensor) else type(adjacency).__name__
        raise DataError(f"adjacency must be a square (C, C) matrix, got {shape}")
    if not isinstance(prior, Tensor) or prior.shape != adjacency.shape:
        shape = tuple(prior.shape) if isinstance(prior, Tensor) else type(prior).__name__
        raise DataError(f"prior must have the adjacency's shape {tuple(adjacency.shape)}, got {shape}")
    if not isinstance(negatives, Tensor) or negatives.shape[-2:] != adjacency.shape or negatives.dim() not in (2, 3):
        shape = tuple(negatives.shape) if isinstance(negatives, Tensor) else type(negatives).__name__
        raise DataError(f"negatives must be a (C, C) mask or a (K, C, C) stack of masks with C = "
                        f"{adjacency.size(0)}, got {shape}")
    adjacency = upcast(adjacency)  # float16 / bfloat16 in float32
    masks = negatives.to(adjacency.dtype)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    target = (prior.detach().to(adjacency.dtype) + masks).clamp(max=cap)
    return ((adjacency.unsqueeze(0) - target) ** 2).mean(dim=(1, 2)).sum()


class AdjacencySupervisionLoss(LossTerm):
    r"""Self-supervision loss (:func:`adjacency_supervision_loss`) on ``adjacency`` and
    ``prior_adjacency`` of the model output, with :math:`K` fresh masks per call,
    :math:`N^{(k)}_{ij} \sim \mathrm{Bernoulli}(\rho)` independently (drawn from the global
    random generator, so ``torch.manual_seed`` fixes them).

    .. math::
        \mathcal{L}_{sup} = \sum_{k=1}^{K} \overline{\big(\hat{A} - \min(A' + N^{(k)}, c)\big)^2},
        \qquad A' = A \text{ or } A^\top

    Args:
        negative_ratio (float): :math:`\rho \in [0, 1]`. (default: ``0.2``)
        num_draws (int): :math:`K`. (default: ``3``)
        cap (float): :math:`c`. (default: ``0.5``)
        transpose_prior (bool): compare :math:`\hat{A}_{ij}` with :math:`A_{ji}` instead of
            :math:`A_{ij}`. (default: ``False``)
    """

    def __init__(self, negative_ratio: float = 0.2, num_draws: int = 3, cap: float = 0.5,
                 transpose_prior: bool = False) -> None:
        super().__init__()
        self.negative_ratio = check_interval("negative_ratio", negative_ratio)
        self.num_draws = check_positive_int("num_draws", num_draws)
        self.cap = check_positive("cap", cap)
        self.transpose_prior = bool(transpose_prior)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        adjacency = require_field(output, "adjacency")
        prior = require_field(output, "prior_adjacency")
        if self.transpose_prior:
            prior = prior.T
        probability = torch.full_like(adjacency, self.negative_ratio).detach()
        negatives = torch.stack([torch.bernoulli(probability) for _ in range(self.num_draws)])
        return adjacency_supervision_loss(adjacency, prior, negatives, self.cap)

    def extra_repr(self) -> str:
        return (f"negative_ratio={self.negative_ratio}, num_draws={self.num_draws}, cap={self.cap}, "
                f"transpose_prior={self.transpose_prior}")
