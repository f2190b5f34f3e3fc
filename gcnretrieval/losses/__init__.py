"""Loss terms, one file each: those of the L2-GCN + Circle-Soft objective (Circle, soft contrastive,
Circle-Soft, classification, adversarial) and those of the published methods it is compared with;
the composite objectives.

Every term is an ``nn.Module`` with one call signature, ``term(output, labels) -> Tensor``
(see :class:`LossTerm`), with public functional forms.
"""
from gcnretrieval.losses.adjacency_supervision import AdjacencySupervisionLoss, adjacency_supervision_loss
from gcnretrieval.losses.adversarial import AdversarialLoss, adversarial_loss
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.circle import CircleLoss, circle_loss
from gcnretrieval.losses.circle_soft import CircleSoftLoss
from gcnretrieval.losses.classification import ClassificationLoss, classification_loss
from gcnretrieval.losses.common_space_discrimination import (CommonSpaceDiscriminationLoss,
                                                             common_space_discrimination_loss, label_similarity)
from gcnretrieval.losses.frobenius import FrobeniusRegularization, frobenius_regularization
from gcnretrieval.losses.label_prediction import LabelPredictionLoss, label_prediction_loss
from gcnretrieval.losses.label_space import LabelSpaceLoss, label_space_loss
from gcnretrieval.losses.modality_classification import ModalityClassificationLoss, modality_classification_loss
from gcnretrieval.losses.modality_invariance import ModalityInvarianceLoss, modality_invariance_loss
from gcnretrieval.losses.objective import CONDITIONS, Objective
from gcnretrieval.losses.pairs import multilabel_pair_masks
from gcnretrieval.losses.soft_contrastive import KAPPA, SoftContrastiveLoss, soft_contrastive_loss
from gcnretrieval.losses.triplet import CrossModalTripletLoss, cross_modal_triplet_loss

__all__ = [
    "AdjacencySupervisionLoss",
    "AdversarialLoss",
    "CONDITIONS",
    "CircleLoss",
    "CircleSoftLoss",
    "ClassificationLoss",
    "CommonSpaceDiscriminationLoss",
    "CrossModalTripletLoss",
    "FrobeniusRegularization",
    "KAPPA",
    "LabelPredictionLoss",
    "LabelSpaceLoss",
    "LossTerm",
    "ModalityClassificationLoss",
    "ModalityInvarianceLoss",
    "Objective",
    "SoftContrastiveLoss",
    "adjacency_supervision_loss",
    "adversarial_loss",
    "circle_loss",
    "classification_loss",
    "common_space_discrimination_loss",
    "cross_modal_triplet_loss",
    "frobenius_regularization",
    "label_prediction_loss",
    "label_similarity",
    "label_space_loss",
    "modality_classification_loss",
    "modality_invariance_loss",
    "multilabel_pair_masks",
    "soft_contrastive_loss",
]
