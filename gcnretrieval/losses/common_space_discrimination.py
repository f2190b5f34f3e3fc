"""DSCMR's discrimination loss in the common representation space (Zhen et al., CVPR 2019, eq. 2)."""
from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from gcnretrieval.losses._checks import check_choice, check_embedding_pair, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.pair_kernels import autocast_off, upcast

SimilarityKind = Literal["shared", "count"]
"""``"shared"``: :math:`S_{ij} = 1` if samples i and j share a label, else 0; ``"count"``: :math:`S_{ij} = \\mathbf{y}_i^\\top\\mathbf{y}_j`."""

EPS = 1e-12
"""Lower bound of a norm in the cosines (:func:`torch.nn.functional.normalize`'s default)."""


def label_similarity(labels_a: Tensor, labels_b: Tensor, similarity: SimilarityKind = "shared") -> Tensor:
    r"""Pairwise label similarity :math:`S_{ij}` of two label matrices.

    .. math::
        \texttt{shared}:\ S_{ij} = \mathbb{1}[\mathbf{y}^a_i{}^\top \mathbf{y}^b_j > 0], \qquad
        \texttt{count}:\ S_{ij} = \mathbf{y}^a_i{}^\top \mathbf{y}^b_j

    Both agree on single-label data (the paper's four datasets).

    Args:
        labels_a: :math:`(n, C)` multi-hot labels.
        labels_b: :math:`(m, C)` multi-hot labels.
        similarity (str, optional): ``"shared"`` or ``"count"``. (default: :obj:`"shared"`)
    """
    check_choice("similarity", similarity, SimilarityKind)
    overlap = labels_a @ labels_b.t()
    return (overlap > 0).to(overlap.dtype) if similarity == "shared" else overlap


def pair_likelihood_loss(theta: Tensor, target: Tensor) -> Tensor:
    r"""Mean negative log-likelihood of pairwise similarities with logits :math:`\Theta`.

    .. math::
        \frac{1}{nm}\sum_{i,j} \log\big(1 + e^{\Theta_{ij}}\big) - S_{ij}\Theta_{ij}

    which is :func:`torch.nn.functional.binary_cross_entropy_with_logits` (computed stably).
    """
    return F.binary_cross_entropy_with_logits(theta, target)


def common_space_discrimination_loss(image: Tensor, text: Tensor, labels: Tensor,
                                     similarity: SimilarityKind = "shared") -> Tensor:
    r"""Discrimination loss in the common representation space (DSCMR, eq. 2): the negative
    log-likelihood of the label similarities of image-text, image-image and text-text pairs,
    with the likelihood :math:`p(S_{ij} = 1) = \sigma(\Gamma_{ij})` of a half cosine.

    .. math::
        \mathcal{J}_2 = \frac{1}{n^2}\sum_{i,j}\Big(\log(1 + e^{\Gamma_{ij}}) - S^{\alpha\beta}_{ij}\Gamma_{ij}\Big)
                      + \frac{1}{n^2}\sum_{i,j}\Big(\log(1 + e^{\Phi_{ij}}) - S^{\alpha\alpha}_{ij}\Phi_{ij}\Big)
                      + \frac{1}{n^2}\sum_{i,j}\Big(\log(1 + e^{\Theta_{ij}}) - S^{\beta\beta}_{ij}\Theta_{ij}\Big)

    with :math:`\Gamma_{ij} = \tfrac12\cos(\mathbf{u}_i, \mathbf{v}_j)`,
    :math:`\Phi_{ij} = \tfrac12\cos(\mathbf{u}_i, \mathbf{u}_j)`,
    :math:`\Theta_{ij} = \tfrac12\cos(\mathbf{v}_i, \mathbf{v}_j)` (the diagonal pairs
    included), and :math:`S` from :func:`label_similarity`. The paper's :math:`S_{ij}` is 1 for
    samples of the same class; on multi-label data ``"shared"`` reads it as sharing a label
    (the toolkit's relevance), ``"count"`` is the public code's number of shared labels. A
    norm below ``1e-12`` is taken as ``1e-12`` in the cosines. float16 and bfloat16
    embeddings are computed in float32 (autocast off).

    Args:
        image: image representations :math:`\mathbf{u}_i` in the common space.
        text: text representations :math:`\mathbf{v}_i`.
        labels: multi-hot 0/1 labels, one row per pair.
        similarity (str, optional): ``"shared"`` or ``"count"``. (default: :obj:`"shared"`)

    Shapes:
        - **input:** image and text :math:`(n, d)`, labels :math:`(n, C)`
        - **output:** scalar
    """
    check_choice("similarity", similarity, SimilarityKind)
    check_embedding_pair(image, text, labels)
    image, text = upcast(image), upcast(text)
    with autocast_off(image.device):
        # the halved norm products divide the (n, n) products, not the (n, d) embeddings
        nu = image.norm(dim=1).clamp_min(EPS)
        nv = text.norm(dim=1).clamp_min(EPS)
        s = label_similarity(labels.to(image.dtype), labels.to(image.dtype), similarity)
        return (pair_likelihood_loss(image @ text.t() / (2.0 * nu[:, None] * nv[None, :]), s)
                + pair_likelihood_loss(image @ image.t() / (2.0 * nu[:, None] * nu[None, :]), s)
                + pair_likelihood_loss(text @ text.t() / (2.0 * nv[:, None] * nv[None, :]), s))


class CommonSpaceDiscriminationLoss(LossTerm):
    r"""DSCMR's common-space discrimination loss (:func:`common_space_discrimination_loss`)
    on the ``image_embedding`` and ``text_embedding`` of the model output.

    .. math::
        \mathcal{J}_2 = \overline{\ell(\Gamma, S^{\alpha\beta})} + \overline{\ell(\Phi, S^{\alpha\alpha})}
                      + \overline{\ell(\Theta, S^{\beta\beta})},
        \qquad \ell(x, s) = \log(1 + e^{x}) - s x

    Args:
        similarity (str, optional): ``"shared"`` or ``"count"``. (default: :obj:`"shared"`)
    """

    def __init__(self, similarity: SimilarityKind = "shared") -> None:
        super().__init__()
        self.similarity = check_choice("similarity", similarity, SimilarityKind)

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        return common_space_discrimination_loss(image, text, labels, self.similarity)

    def extra_repr(self) -> str:
        return f"similarity={self.similarity!r}"


__all__ = ["CommonSpaceDiscriminationLoss", "SimilarityKind", "common_space_discrimination_loss",
           "label_similarity", "pair_likelihood_loss"]
