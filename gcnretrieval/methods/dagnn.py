r"""DAGNN: Qian, Xue, Zhang, Fang, Xu, "Dual Adversarial Graph Neural Networks for Multi-label
Cross-modal Retrieval", AAAI 2021.

The model is the toolkit's label-graph model (:class:`~gcnretrieval.models.CrossModalModel`)
with DAGNN's choices: one-layer projectors :math:`\mathrm{ReLU}(\mathbf{W}\mathbf{x} + \mathbf{b})`
to :math:`d = 1024`; the dual generators :math:`G_{vt}` (512 hidden, LeakyReLU 0.2) and
:math:`G_{tv}` (2048 hidden, ReLU); discriminators behind gradient reversal of widths
:math:`d \to d/4 \to d/16 \to 2`; the multi-hop GNN: 5 GCN layers (no bias, LeakyReLU 0.2 after
each) on the co-occurrence graph of the training labels,
:math:`A_{ij} = 0.5\cdot\mathbb{1}[P(j \mid i) \ge 0.4] + \delta_{ij}` (the weight of the message
:math:`j \to i`), over fixed GloVe label vectors, the layer outputs concatenated and mapped to :math:`d` (the layer
aggregation); label scores :math:`\cos(\mathbf{v}_i, \mathbf{c}_j)`. The objective
(:class:`DAGNNObjective`):

.. math::
    \mathcal{L} = \mathcal{L}_{cla} + \alpha\,\mathcal{L}_{dis} + \beta\,\mathcal{L}_{adv},
    \qquad \alpha = \beta = 0.2

with :math:`\mathcal{L}_{cla}` the classification loss (per-sample Euclidean norm),
:math:`\mathcal{L}_{dis}` DSCMR's discrimination loss in the common space, the pairwise
likelihood of the label similarities over image-image, image-text and text-text pairs
(:func:`~gcnretrieval.losses.common_space_discrimination_loss`) and :math:`\mathcal{L}_{adv}` the adversarial loss of the two discriminators.
Training: Adam, lr 5e-5, betas (0.5, 0.999), 40 epochs, batch 100 (MIRFlickr).

Source of each choice. The paper's text was not available to us; the public code
(github.com/LivXue/GNN4CMR) is the complete specification, and this preset follows its AAAI-2021
release (commit 429141c, "P-GNN (DAGNN)"), not the later TPAMI code, whose ``P_GNN`` adds
BatchNorm layers and discriminator activations (that is P-GNN-CON's network). Consequences:

- **No BatchNorm** anywhere (``model.batch_norm = false``) and **linear discriminators**: the
  release's modality classifiers have no activation between their three linear layers
  (``model.discriminator_act = "identity"``); both discriminators taper their input width by
  4 and 16 (``model.image_discriminator_hidden = None``: 4096 → 1024 → 256 on VGG19 features).
- The discrimination term uses the *number of shared labels* :math:`\mathbf{y}_i^\top\mathbf{y}_j`
  as the pair similarity (the code's ``calc_label_sim``), not whether they share one
  (``loss.similarity = "shared"`` gives that).
- Edge direction: the code's ``gen_A`` divides the co-occurrence counts by the label counts
  ``nums`` of its ``adj.mat``, which SciPy loads as a :math:`1 \times C` row, so the division is
  column-wise and label :math:`i` aggregates from the labels :math:`j` with :math:`P(j \mid i) \ge t`
  (those its presence implies): the reverse of ML-GCN's reading, the toolkit's default
  (``graph.options.reverse = true`` reproduces the code; the side-by-side check matches only with it).
- GCN normalisation: the code's ``gen_adj`` normalises :math:`A` by the weighted degree of each
  label as the *source* of messages (``encoder.degree = "source"``); PyG's ``gcn_norm`` uses the
  target's. They differ on the asymmetric co-occurrence graph only.
- Per dataset the release uses batch 1,024 and 4 GCN layers on NUS-WIDE and MS-COCO (same
  α, β, lr, epochs): set ``train.batch_size`` and ``encoder.num_layers``.
- The label vectors are fixed (not trained), as in the code.

What differs from the code: on shared weights and one float64 batch
(``benchmarks/gnn4cmr_vs_reference.sh``, benchmarks/RESULTS.md) the loss agrees to a relative
2.5e-8 and every parameter's gradient to 1.5e-6, and to rounding once our label scores use the
code's formula, the one difference in the computation: label scores divide by :math:`\max(\lVert\mathbf{v}\rVert, 10^{-8})
\max(\lVert\mathbf{c}\rVert, 10^{-8})` where the code divides by
:math:`\lVert\mathbf{v}\rVert\lVert\mathbf{c}\rVert + 10^{-6}`; initialisation follows PyTorch /
PyG defaults (Glorot GCN weights, where the code draws :math:`\mathcal{U}(\pm 1/\sqrt{d})`); the
epoch is selected on a validation split (the code keeps the best *test* epoch:
``eval.select_on = "test"``); the co-occurrence graph is built from the training labels, as the
code's ``adj.mat`` (ML-GCN's format, zero diagonal) is assumed to be.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from gcnretrieval.checks import check_non_negative
from gcnretrieval.defaults import DEFAULT_THRESHOLD
from gcnretrieval.losses import AdversarialLoss, ClassificationLoss, CommonSpaceDiscriminationLoss
from gcnretrieval.losses.common_space_discrimination import SimilarityKind
from gcnretrieval.losses.registry import MethodObjective, register_objective
from gcnretrieval.methods.base import Method, register_method

HALF = (torch.float16, torch.bfloat16)


@register_objective("dagnn")
class DAGNNObjective(MethodObjective):
    r"""DAGNN's objective.

    .. math::
        \mathcal{L} = \mathcal{L}_{cla} + \alpha\,\mathcal{L}_{dis} + \beta\,\mathcal{L}_{adv}

    The terms are computed in float32 at least (half-precision model outputs are upcast, autocast
    is off).

    Args:
        alpha (float, optional): weight of the discrimination term. (default: :obj:`0.2`)
        beta (float, optional): weight of the adversarial term. (default: :obj:`0.2`)
        similarity (str, optional): pair similarity of the discrimination term, ``"count"`` or
            ``"shared"``. (default: :obj:`"count"`)
    """

    parts: ClassVar[tuple[str, ...]] = ("total", "classification", "discrimination", "adversarial")

    def __init__(self, alpha: float = 0.2, beta: float = 0.2, similarity: SimilarityKind = "count") -> None:
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)
        self.classification = ClassificationLoss()
        self.discrimination = CommonSpaceDiscriminationLoss(similarity)
        self.adversarial = AdversarialLoss()

    def forward(self, output: Any, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.autocast(labels.device.type, enabled=False):
            output = _upcast(output)
            values = {"classification": self.classification(output, labels),
                      "discrimination": self.discrimination(output, labels),
                      "adversarial": self.adversarial(output, labels)}
            total = values["classification"] + self.alpha * values["discrimination"] \
                + self.beta * values["adversarial"]
        parts = {name: value.detach() for name, value in values.items()}
        parts["total"] = total.detach()
        return total, parts

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, similarity={self.discrimination.similarity!r}"


class _Upcast:
    def __init__(self, output: Any) -> None:
        self._output = output

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._output, name)
        return value.float() if isinstance(value, Tensor) and value.dtype in HALF else value


def _upcast(output: Any) -> Any:
    return _Upcast(output)


#: DAGNN's settings (AAAI-2021 release, MIRFlickr), on top of a recipe's data and run tables.
PRESET: dict[str, Any] = {
    "model.name": "label_graph",
    "model.common_dim": 1024,
    "model.batch_norm": False,
    "model.discriminator_act": "identity",
    "model.image_discriminator_hidden": None,
    "loss.name": "dagnn",
    "graph.kind": "cooccurrence",
    "graph.threshold": DEFAULT_THRESHOLD,
    "graph.options.reverse": True,
    "encoder.name": "gcn",
    "encoder.num_layers": 5,
    "encoder.bias": False,
    "encoder.degree": "source",
    "train.batch_size": 100,
    "train.lr": 5e-5,
    "train.betas": [0.5, 0.999],
    "train.epochs": 40,
}

register_method(Method(
    name="dagnn",
    paper="Qian, Xue, Zhang, Fang, Xu: Dual Adversarial Graph Neural Networks for Multi-label Cross-modal "
          "Retrieval, AAAI 2021",
    summary="GCN label classifiers on the co-occurrence graph with layer aggregation, dual generators and "
            "discriminators; classification, common-space discrimination and adversarial losses",
    preset=PRESET,
    space={"train.lr": {"low": 1e-5, "high": 1e-3, "log": True}, "train.epochs": {"low": 10, "high": 80},
           "loss.alpha": {"low": 0.05, "high": 1.0, "log": True}, "loss.beta": {"low": 0.05, "high": 1.0, "log": True}},
))
