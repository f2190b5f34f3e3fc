"""Label graphs: shipped vocabularies, graph construction, a learned graph, summaries and plots."""
from gcnretrieval.graphs.adaptive import AdaptiveLabelGraph
from gcnretrieval.graphs.build import GRAPH_KINDS, build_label_graph, cooccurrence_counts
from gcnretrieval.graphs.plot import plot_label_graph
from gcnretrieval.graphs.summary import LabelGraphSummary, summarize_label_graph
from gcnretrieval.graphs.names import node_features_from_names
from gcnretrieval.graphs.vocabulary import LabelVocabulary, available_label_vocabularies, load_label_vocabulary
from gcnretrieval.graphs.word_vectors import NodeFeatures, label_node_features, read_word_vectors

__all__ = [
    "GRAPH_KINDS",
    "AdaptiveLabelGraph",
    "LabelGraphSummary",
    "LabelVocabulary",
    "NodeFeatures",
    "available_label_vocabularies",
    "build_label_graph",
    "cooccurrence_counts",
    "label_node_features",
    "load_label_vocabulary",
    "node_features_from_names",
    "plot_label_graph",
    "read_word_vectors",
    "summarize_label_graph",
]
