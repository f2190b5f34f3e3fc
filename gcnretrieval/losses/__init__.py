"""Loss terms: Circle, soft contrastive, Circle-Soft, classification, adversarial, pair likelihood, and the objective.

Every term is an ``nn.Module`` with one call signature, ``term(output, labels) -> Tensor``
(see :class:`LossTerm`), with public functional forms.
"""
from gcnretrieval.losses.adversarial import AdversarialLoss, adversarial_loss
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.circle import CircleLoss, circle_loss
from gcnretrieval.losses.circle_soft import CircleSoftLoss
from gcnretrieval.losses.classification import ClassificationLoss, classification_loss
from gcnretrieval.losses.objective import CONDITIONS, Objective
from gcnretrieval.losses.pair_likelihood import PairLikelihoodLoss, pair_likelihood_loss
from gcnretrieval.losses.pairs import multilabel_pair_masks
from gcnretrieval.losses.soft_contrastive import KAPPA, SoftContrastiveLoss, soft_contrastive_loss

__all__ = [
    "AdversarialLoss",
    "CONDITIONS",
    "CircleLoss",
    "CircleSoftLoss",
    "ClassificationLoss",
    "KAPPA",
    "LossTerm",
    "Objective",
    "PairLikelihoodLoss",
    "SoftContrastiveLoss",
    "adversarial_loss",
    "circle_loss",
    "classification_loss",
    "multilabel_pair_masks",
    "pair_likelihood_loss",
    "soft_contrastive_loss",
]
