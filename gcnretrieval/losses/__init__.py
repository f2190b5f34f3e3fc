"""Loss terms: Circle, soft contrastive, Circle-Soft, classification, adversarial, pairwise
likelihood, adjacency supervision, and the objective.

Every term is an ``nn.Module`` with one call signature, ``term(output, labels) -> Tensor``
(see :class:`LossTerm`), with public functional forms.
"""
from gcnretrieval.losses.adjacency_supervision import AdjacencySupervisionLoss, adjacency_supervision_loss
from gcnretrieval.losses.adversarial import AdversarialLoss, adversarial_loss
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.circle import CircleLoss, circle_loss
from gcnretrieval.losses.circle_soft import CircleSoftLoss
from gcnretrieval.losses.classification import ClassificationLoss, classification_loss
from gcnretrieval.losses.objective import CONDITIONS, Objective
from gcnretrieval.losses.pairwise_likelihood import PairwiseLikelihoodLoss, pairwise_likelihood_loss
from gcnretrieval.losses.pairs import multilabel_pair_masks
from gcnretrieval.losses.soft_contrastive import KAPPA, SoftContrastiveLoss, soft_contrastive_loss

__all__ = [
    "AdjacencySupervisionLoss",
    "AdversarialLoss",
    "CONDITIONS",
    "CircleLoss",
    "CircleSoftLoss",
    "ClassificationLoss",
    "KAPPA",
    "LossTerm",
    "Objective",
    "PairwiseLikelihoodLoss",
    "SoftContrastiveLoss",
    "adjacency_supervision_loss",
    "adversarial_loss",
    "circle_loss",
    "classification_loss",
    "multilabel_pair_masks",
    "pairwise_likelihood_loss",
    "soft_contrastive_loss",
]
