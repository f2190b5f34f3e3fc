"""Per-sample scaled norms of a difference matrix, the two readings of DSCMR's ``(1/n)||.||_F``."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from gcnretrieval.losses._checks import check_choice

NormKind = Literal["frobenius", "rows"]
"""``"frobenius"``: :math:`\\frac{1}{n}\\lVert D \\rVert_F`; ``"rows"``: :math:`\\frac{1}{n}\\sum_i \\lVert D_i \\rVert_2`."""


def scaled_norm(diff: Tensor, norm: NormKind = "frobenius") -> Tensor:
    r"""The norm of an :math:`(n, k)` difference matrix :math:`D` divided by its :math:`n` rows.

    .. math::
        \texttt{frobenius}:\ \frac{1}{n}\lVert D \rVert_F = \frac{1}{n}\Big(\sum_{i,k} D_{ik}^2\Big)^{1/2},
        \qquad
        \texttt{rows}:\ \frac{1}{n}\sum_i \lVert D_{i\cdot} \rVert_2

    Where a norm is exactly zero its gradient is zero (the subgradient), never ``NaN``.

    Args:
        diff: the difference matrix.
        norm (str, optional): ``"frobenius"`` or ``"rows"``. (default: :obj:`"frobenius"`)
    """
    check_choice("norm", norm, NormKind)
    if norm == "frobenius":
        return torch.linalg.vector_norm(diff) / diff.size(0)
    return torch.linalg.vector_norm(diff, dim=1).mean()
