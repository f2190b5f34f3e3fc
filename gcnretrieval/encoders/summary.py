"""Describe the registered encoders: parameter counts and, on a label graph, their
output at initialisation (a quick check that rows do not collapse)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

from gcnretrieval.encoders.registry import available_encoders, build_encoder


@dataclass(frozen=True)
class EncoderSummary:
    """One row of :func:`describe_encoders`.

    ``output_shape`` and ``mean_cosine`` are set only when a graph was given.
    """

    name: str
    class_name: str
    num_parameters: int
    options: list[str]
    output_shape: tuple[int, int] | None = None
    mean_cosine: float | None = None


def mean_pairwise_cosine(rows: Tensor) -> float:
    """Mean cosine similarity over all ordered pairs of distinct rows (1.0 = collapsed)."""
    n = rows.size(0)
    if n < 2:
        raise ValueError("mean_pairwise_cosine needs at least two rows")
    unit = torch.nn.functional.normalize(rows.detach().double(), dim=1)
    sims = unit @ unit.t()
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def describe_encoders(
    in_channels: int = 300,
    out_channels: int = 1024,
    num_layers: int = 5,
    graph: Data | None = None,
    seed: int = 0,
) -> list[EncoderSummary]:
    """Build every registered encoder once and count its trainable parameters.

    Counts do not depend on the number of labels: every encoder shares its weights
    across labels. With ``graph`` (``x``, ``edge_index``, optional ``edge_weight``;
    ``in_channels`` is then taken from ``graph.x``) each encoder also runs one forward
    pass at initialisation in eval mode, reporting the output shape and the mean
    pairwise cosine of its rows. Weights are drawn under ``seed`` without touching
    the global random state.
    """
    if graph is not None:
        in_channels = int(graph.x.size(1))
    rows = []
    for name in available_encoders():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = build_encoder(name, in_channels, out_channels, num_layers=num_layers)
        count = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
        shape, cosine = None, None
        if graph is not None:
            encoder.eval()
            with torch.no_grad():
                out = encoder(graph.x.float(), graph.edge_index, getattr(graph, "edge_weight", None))
            shape, cosine = (int(out.size(0)), int(out.size(1))), mean_pairwise_cosine(out)
        rows.append(EncoderSummary(name, type(encoder).__name__, count, type(encoder).options(),
                                   shape, cosine))
    return rows
