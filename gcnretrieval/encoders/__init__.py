"""Label encoders: a :class:`LabelEncoder` base and built-in encoders, registered by name.

Built-in: ``l2gcn`` (:class:`L2GCN`), ``gcn`` (:class:`GCN`), ``gat`` (:class:`GAT`) and
``bagfn`` (:class:`BaGFN`), plus the no-graph baseline ``none`` (:class:`NoGraph`).
Build one with ``build_encoder("l2gcn", 300, 1024)``.
"""
from gcnretrieval.encoders.base import LabelEncoder, resolve_activation
from gcnretrieval.encoders.registry import (
    DEFAULT_ENCODER,
    ENCODERS,
    available_encoders,
    build_encoder,
    register_encoder,
)
from gcnretrieval.encoders.summary import EncoderSummary, describe_encoders, mean_pairwise_cosine
from gcnretrieval.encoders.l2gcn import L2GCN, L2GCNConv  # noqa: E402  (registers)
from gcnretrieval.encoders.gcn import GCN  # noqa: E402
from gcnretrieval.encoders.gat import GAT  # noqa: E402
from gcnretrieval.encoders.bagfn import BaGFN, BaGFNBlock  # noqa: E402
from gcnretrieval.encoders.nograph import NodeLinear, NoGraph  # noqa: E402

__all__ = [
    "LabelEncoder",
    "resolve_activation",
    "DEFAULT_ENCODER",
    "ENCODERS",
    "EncoderSummary",
    "available_encoders",
    "build_encoder",
    "describe_encoders",
    "mean_pairwise_cosine",
    "register_encoder",
    "L2GCN",
    "L2GCNConv",
    "GCN",
    "GAT",
    "BaGFN",
    "BaGFNBlock",
    "NoGraph",
    "NodeLinear",
]
