r"""Pairwise likelihood loss in the common space (DSCMR's discrimination loss, used by ALGCN)."""
from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import check_choice, check_embedding_pair, check_positive, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast

Similarity = Literal["count", "binary"]


def pairwise_likelihood_loss(
    image: Tensor,
    text: Tensor,
    labels: Tensor,
    similarity: Similarity = "count",
    scale: float = 0.5,
    eps: float = 1e-6,
) -> Tensor:
    r"""Negative log-likelihood of the label similarities under the cosine of each pair.

    .. math::
        \theta^{ab}_{ij} = s \, \frac{\mathbf{a}_i^\top \mathbf{b}_j}
            {\max(\lVert \mathbf{a}_i \rVert \lVert \mathbf{b}_j \rVert, \epsilon)}, \qquad
        \mathcal{L}_{pair} = \sum_{ab \in \{vv,\, vt,\, tt\}} \frac{1}{n^2} \sum_{i,j}
            \Big( \log\big(1 + e^{\theta^{ab}_{ij}}\big) - S_{ij}\, \theta^{ab}_{ij} \Big)

    with :math:`S = Y Y^\top` (``similarity = "count"``: the number of labels the two
    samples share, as in the public code of DSCMR and ALGCN) or
    :math:`S_{ij} = \mathbb{1}[\mathbf{y}_i^\top \mathbf{y}_j > 0]` (``"binary"``: the
    DSCMR paper's "share a label" indicator). The softplus is computed stably. float16 and
    bfloat16 embeddings are computed in float32, with autocast off.

    Args:
        image: common-space image embeddings :math:`\mathbf{v}`.
        text: common-space text embeddings :math:`\mathbf{t}`.
        labels: multi-hot 0/1 labels.
        similarity (str): ``"count"`` or ``"binary"``. (default: ``"count"``)
        scale (float): :math:`s`, the factor on the cosine. (default: ``0.5``)
        eps (float): floor :math:`\epsilon` of the norm product. (default: ``1e-6``)

    Shapes:
        - **image, text:** :math:`(n, d)`; **labels:** :math:`(n, C)`
        - **output:** scalar
    """
    check_embedding_pair(image, text, labels)
    check_choice("similarity", similarity, ("count", "binary"))
    check_positive("scale", scale)
    check_positive("eps", eps)
    with autocast_off(image.device):
        return _pairwise_likelihood(upcast(image), upcast(text), labels, similarity, scale, eps)


def _pairwise_likelihood(image: Tensor, text: Tensor, labels: Tensor, similarity: str, scale: float,
                         eps: float) -> Tensor:
    y = labels.to(image.dtype)
    s = y @ y.T
    if similarity == "binary":
        s = (s > 0).to(image.dtype)
    total = image.new_zeros(())
    for a, b in ((image, image), (image, text), (text, text)):
        norms = a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True).T
        theta = scale * (a @ b.T) / norms.clamp(min=eps)
        total = total + (F.softplus(theta) - s * theta).mean()
    return total


class PairwiseLikelihoodLoss(LossTerm):
    r"""Pairwise likelihood loss (:func:`pairwise_likelihood_loss`) on ``image_embedding``
    and ``text_embedding`` of the model output.

    .. math::
        \mathcal{L}_{pair} = \sum_{ab \in \{vv, vt, tt\}} \overline{\log(1 + e^{\theta^{ab}})
            - S \odot \theta^{ab}}

    Args:
        similarity (str): ``"count"`` or ``"binary"``. (default: ``"count"``)
        scale (float): factor on the cosine. (default: ``0.5``)
    """

    def __init__(self, similarity: Similarity = "count", scale: float = 0.5) -> None:
        super().__init__()
        self.similarity = check_choice("similarity", similarity, ("count", "binary"))
        self.scale = check_positive("scale", scale)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return pairwise_likelihood_loss(image, text, labels, self.similarity, self.scale)

    def extra_repr(self) -> str:
        return f"similarity={self.similarity!r}, scale={self.scale}"
