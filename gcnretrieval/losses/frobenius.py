r"""Frobenius-norm weight regularisation (ACMR's :math:`\mathcal{L}_{reg}`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gcnretrieval.errors import DataError
from gcnretrieval.losses._checks import require_field
from gcnretrieval.losses.base import LossTerm


def frobenius_regularization(weights: Sequence[Tensor]) -> Tensor:
    r"""Sum of the Frobenius norms of weight matrices (ACMR, Wang et al., ACM MM 2017, eq. 6).

    .. math::
        \mathcal{L}_{reg} = \sum_{l=1}^{L} \Big(\lVert \mathbf{W}^l_v \rVert_F
            + \lVert \mathbf{W}^l_t \rVert_F\Big)

    over the layers :math:`l` of the image and text feature projectors. The norms are not
    squared (so this is not weight decay: each matrix is pulled towards zero with a gradient
    :math:`\mathbf{W} / \lVert \mathbf{W} \rVert_F` of unit norm). An all-zero matrix adds 0 with
    a zero gradient. Each norm is taken in the weight's own dtype, at least float32.

    Args:
        weights: the weight matrices (any shapes); at least one.

    Shapes:
        - **input:** a sequence of tensors
        - **output:** scalar
    """
    weights = tuple(weights)
    if not weights:
        raise DataError("frobenius_regularization needs at least one weight tensor; pass the projectors' weights")
    for w in weights:
        if not isinstance(w, Tensor) or not w.is_floating_point():
            kind = w.dtype if isinstance(w, Tensor) else type(w).__name__
            raise DataError(f"frobenius_regularization takes floating-point weight tensors, got {kind}")
    return torch.stack([_norm(w) for w in weights]).sum()


def _norm(weight: Tensor) -> Tensor:
    # one reduction kernel; its backward, W / ||W||, is set to 0 where the norm is 0
    return torch.linalg.vector_norm(weight, ord=2, dtype=torch.promote_types(weight.dtype, torch.float32))


class FrobeniusRegularization(LossTerm):
    r"""ACMR's :math:`\mathcal{L}_{reg}` (:func:`frobenius_regularization`) on the
    ``projector_weights`` of the model output; ``labels`` are not used.

    .. math::
        \mathcal{L}_{reg} = \sum_l \lVert \mathbf{W}^l \rVert_F
    """

    def forward(self, output: Any, labels: Tensor | None = None) -> Tensor:
        return frobenius_regularization(require_field(output, "projector_weights"))
