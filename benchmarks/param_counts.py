"""Parameter counts of the full model at MIRFlickr-25K shapes, per label encoder.

Shapes: image 4,096-d (VGG19 fc7), text 1,386-d (BoW), 24 labels with 300-d word
vectors, common dimension 1,024, encoder depth 5. The graph's edges do not change any
count, so a ring over the 24 labels stands in for the co-occurrence graph.

Usage::

    python benchmarks/param_counts.py [--depth 5] [--text-dim 1386]

Prints a markdown table (millions of parameters). The paper's Table 2 reports
29.92 M for its I-GNN baseline and 35.41 M for L2-GCN on MIRFlickr.
"""
from __future__ import annotations

import argparse

import torch
from torch_geometric.data import Data

from gcnretrieval.encoders import available_encoders
from gcnretrieval.models import CrossModalModel, parameter_breakdown

COLUMNS = ("projectors", "generators", "discriminators", "encoder", "total")


def ring_graph(num_labels: int, num_features: int) -> Data:
    src = torch.arange(num_labels)
    dst = (src + 1) % num_labels
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return Data(x=torch.zeros(num_labels, num_features), edge_index=edge_index,
                edge_weight=torch.full((edge_index.size(1),), 0.5), num_nodes=num_labels)


def count_table(image_dim: int = 4096, text_dim: int = 1386, num_labels: int = 24,
                node_dim: int = 300, common_dim: int = 1024, depth: int = 5) -> list[dict[str, int]]:
    """One row of part counts per registered encoder."""
    graph = ring_graph(num_labels, node_dim)
    rows = []
    for name in available_encoders():
        model = CrossModalModel(image_dim, text_dim, graph, encoder=name,
                                encoder_options={"num_layers": depth}, common_dim=common_dim)
        rows.append({"name": name, **parameter_breakdown(model)})
    return rows


def markdown(rows: list[dict[str, int]]) -> str:
    lines = ["| encoder | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for row in rows:
        cells = " | ".join(f"{row[c] / 1e6:.2f} M" for c in COLUMNS)
        lines.append(f"| {row['name']} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-dim", type=int, default=4096)
    parser.add_argument("--text-dim", type=int, default=1386)
    parser.add_argument("--labels", type=int, default=24)
    parser.add_argument("--node-dim", type=int, default=300)
    parser.add_argument("--common-dim", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=5)
    args = parser.parse_args()
    rows = count_table(args.image_dim, args.text_dim, args.labels, args.node_dim,
                       args.common_dim, args.depth)
    print(markdown(rows))


if __name__ == "__main__":
    main()
