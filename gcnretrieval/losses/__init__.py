"""Loss terms: Circle, soft contrastive, Circle-Soft, classification, adversarial, and the objective;
ACMR's cross-modal triplet, label prediction, modality classification and Frobenius terms; ALGCN's
pairwise likelihood and adjacency supervision terms.

Every term is an ``nn.Module`` with one call signature, ``term(output, labels) -> Tensor``
(see :class:`LossTerm`), with public functional forms.
"""
from gcnretrieval.losses.adjacency_supervision import AdjacencySupervisionLoss, adjacency_supervision_loss
from gcnretrieval.losses.adversarial import AdversarialLoss, adversarial_loss
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.circle import CircleLoss, circle_loss
from gcnretrieval.losses.circle_soft import CircleSoftLoss
from gcnretrieval.losses.classification import ClassificationLoss, classification_loss
from gcnretrieval.losses.frobenius import FrobeniusRegularization, frobenius_regularization
from gcnretrieval.losses.label_prediction import LabelPredictionLoss, label_prediction_loss
from gcnretrieval.losses.modality_classification import ModalityClassificationLoss, modality_classification_loss
from gcnretrieval.losses.objective import CONDITIONS, Objective
from gcnretrieval.losses.pairwise_likelihood import PairwiseLikelihoodLoss, pairwise_likelihood_loss
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
    "CrossModalTripletLoss",
    "FrobeniusRegularization",
    "KAPPA",
    "LabelPredictionLoss",
    "LossTerm",
    "ModalityClassificationLoss",
    "Objective",
    "PairwiseLikelihoodLoss",
    "SoftContrastiveLoss",
    "adjacency_supervision_loss",
    "adversarial_loss",
    "circle_loss",
    "classification_loss",
    "cross_modal_triplet_loss",
    "frobenius_regularization",
    "label_prediction_loss",
    "modality_classification_loss",
    "multilabel_pair_masks",
    "pairwise_likelihood_loss",
    "soft_contrastive_loss",
]
