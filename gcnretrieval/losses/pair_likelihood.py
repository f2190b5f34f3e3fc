r"""Pairwise label-similarity likelihood in the common space (DSCMR's discrimination loss, as DAGNN uses it)."""
from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import check_choice, check_embedding_pair, require_field
from gcnretrieval.losses.base import LossTerm

PairSimilarity = Literal["count", "binary"]

#: floor of the norm product in the cosine (the reference code's constant)
NORM_FLOOR = 1e-6


def _half_cosines(a: Tensor, b: Tensor) -> Tensor:
    norms = a.norm(dim=1, keepdim=True) @ b.norm(dim=1, keepdim=True).t()
    return (a @ b.t()) / norms.clamp(min=NORM_FLOOR) / 2.0


def pair_likelihood_loss(image: Tensor, text: Tensor, labels: Tensor,
                         similarity: PairSimilarity = "count") -> Tensor:
    r"""Negative log-likelihood of the label similarities under the embedding similarities.

    With :math:`\Gamma^{ab}_{ij} = \frac{1}{2}\cos(\mathbf{a}_i, \mathbf{b}_j)` (the norm product
    floored at :math:`10^{-6}`) and :math:`S_{ij} = \mathbf{y}_i^\top \mathbf{y}_j` (``"count"``,
    the number of shared labels, as DAGNN's code computes it) or
    :math:`S_{ij} = \min(1, \mathbf{y}_i^\top \mathbf{y}_j)` (``"binary"``, DSCMR's definition),

    .. math::
        \mathcal{L}_{pl} = \sum_{ab \in \{vv,\, vt,\, tt\}} \frac{1}{n^2} \sum_{i,j}
        \Big(\log\big(1 + e^{\Gamma^{ab}_{ij}}\big) - S_{ij}\,\Gamma^{ab}_{ij}\Big)

    over all :math:`n^2` ordered pairs (the diagonal included).

    Args:
        image: image embeddings :math:`\mathbf{v}`.
        text: text embeddings :math:`\mathbf{t}`.
        labels: multi-hot 0/1 labels.
        similarity: ``"count"`` (default) or ``"binary"``.

    Shapes:
        - **input:** image, text :math:`(n, d)`; labels :math:`(n, C)`
        - **output:** scalar
    """
    check_embedding_pair(image, text, labels)
    check_choice("similarity", similarity, PairSimilarity)
    y = labels.to(image.dtype)
    shared = y @ y.t()
    if similarity == "binary":
        shared = shared.clamp(max=1.0)
    total = image.new_zeros(())
    for a, b in ((image, image), (image, text), (text, text)):
        gamma = _half_cosines(a, b)
        total = total + (F.softplus(gamma) - shared * gamma).mean()
    return total


class PairLikelihoodLoss(LossTerm):
    r"""Pairwise likelihood loss (:func:`pair_likelihood_loss`) on ``image_embedding`` and
    ``text_embedding`` of the model output.

    .. math::
        \mathcal{L}_{pl} = \sum_{ab} \overline{\log(1 + e^{\Gamma^{ab}}) - S \odot \Gamma^{ab}}

    Args:
        similarity: ``"count"`` (default) or ``"binary"``.
    """

    def __init__(self, similarity: PairSimilarity = "count") -> None:
        super().__init__()
        self.similarity = check_choice("similarity", similarity, PairSimilarity)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        return pair_likelihood_loss(require_field(output, "image_embedding"), require_field(output, "text_embedding"),
                                    labels, self.similarity)

    def extra_repr(self) -> str:
        return f"similarity={self.similarity!r}"
