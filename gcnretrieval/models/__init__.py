"""Model parts (projectors, generators, discriminators behind gradient reversal) and the
cross-modal model that joins them to a label encoder."""
from gcnretrieval.models.adaptive_cooccurrence import AdaptiveCooccurrenceGraph
from gcnretrieval.models.complexity import count_flops, model_flops
from gcnretrieval.models.cross_modal import CrossModalModel, CrossModalOutput, cosine_scores
from gcnretrieval.models.discriminators import Discriminator, tapered_widths
from gcnretrieval.models.generators import Generator
from gcnretrieval.models.grl import GradientReversal, reverse_gradient
from gcnretrieval.models.label_graph import StaticLabelGraph
from gcnretrieval.models.parameters import count_parameters, parameter_breakdown
from gcnretrieval.models.projectors import Projector

__all__ = [
    "AdaptiveCooccurrenceGraph",
    "CrossModalModel",
    "CrossModalOutput",
    "Discriminator",
    "Generator",
    "GradientReversal",
    "Projector",
    "StaticLabelGraph",
    "cosine_scores",
    "count_flops",
    "count_parameters",
    "model_flops",
    "parameter_breakdown",
    "reverse_gradient",
    "tapered_widths",
]
