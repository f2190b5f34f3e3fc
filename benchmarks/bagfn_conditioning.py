"""Permutation equivariance and conditioning of the ``bagfn`` encoder at initialisation.

Graphs: 24 labels from 2,000 random multi-label rows (label frequencies in [0.05, 0.6],
the last label rare with 3 rows, every label present) with unit-scale 300-d features,
one graph per seed; and the shipped vocabularies (GloVe vectors, real counts). Encoder:
``build_encoder("bagfn", 300, 64)`` (default depth 5), seeded like the graph.

For each graph and precision: the largest ``|encoder(x[perm], relabelled edges) -
encoder(x, edges)[perm]|`` and ``max |output|``; the forward error of float32, the
largest difference between the float32 encoder and the same weights and inputs run in
float64; and, over the blocks of the float64
forward, the largest condition numbers of the two Gram matrices of the broad gate,
``B^T B + lambda I`` (2b x 2b) and ``B B^T + lambda I`` (C x C).

    python benchmarks/bagfn_conditioning.py [--width 64] [--layers 5]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from gcnretrieval.encoders import build_encoder
from gcnretrieval.graphs import build_label_graph, load_label_vocabulary

IN = 300


def random_label_graph(seed: int, rows: int = 2000, labels: int = 24):
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(0.05, 0.6, size=labels)
    y = (rng.random((rows, labels)) < frequency).astype(np.int64)
    y[:, -1] = 0
    y[rng.choice(rows, size=3, replace=False), -1] = 1
    y[np.arange(labels), np.arange(labels)] = 1
    features = rng.standard_normal((labels, IN)).astype(np.float32)
    return build_label_graph(y, features)


def gram_conditions(encoder, graph) -> tuple[float, float]:
    """Largest cond(B^T B + lambda I) and cond(B B^T + lambda I) over the blocks (float64)."""
    seen = []

    def hook(module, inputs, output):
        seen.append(torch.cat([inputs[0], torch.tanh(output)], dim=-1).detach())

    handles = [conv.broad_enhance.register_forward_hook(hook) for conv in encoder.convs]
    with torch.no_grad():
        encoder(graph.x.double(), graph.edge_index, graph.edge_weight.double())
    for handle in handles:
        handle.remove()
    wide, tall = 0.0, 0.0
    for conv, nodes in zip(encoder.convs, seen):
        ridge = float(conv.ridge)
        wide = max(wide, torch.linalg.cond(nodes.t() @ nodes + ridge * torch.eye(nodes.size(1),
                                                                                  dtype=nodes.dtype)).item())
        tall = max(tall, torch.linalg.cond(nodes @ nodes.t() + ridge * torch.eye(nodes.size(0),
                                                                                 dtype=nodes.dtype)).item())
    return wide, tall


def measure(name: str, graph, seed: int, width: int, layers: int) -> str:
    c = graph.num_nodes
    perm = torch.randperm(c, generator=torch.Generator().manual_seed(100 + seed))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(c)
    cells, outputs = [], []
    torch.manual_seed(seed)
    encoder = build_encoder("bagfn", IN, width, num_layers=layers).eval()
    for dtype in (torch.float32, torch.float64):
        encoder = encoder.to(dtype)  # float64: exactly the float32 weights
        x, weight = graph.x.to(dtype), graph.edge_weight.to(dtype)
        with torch.no_grad():
            out = encoder(x, graph.edge_index, weight)
            out_perm = encoder(x[perm], inverse[graph.edge_index], weight)
        outputs.append(out)
        cells += [f"{(out_perm - out[perm]).abs().max().item():.3g}", f"{out.abs().max().item():.3g}"]
    cells.append(f"{(outputs[0].double() - outputs[1]).abs().max().item():.3g}")
    wide, tall = gram_conditions(encoder, graph)
    return f"| {name} | {c} | " + " | ".join(cells) + f" | {wide:.3g} | {tall:.3g} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=5)
    args = parser.parse_args()
    print("| graph | C | float32 max diff | float32 max |out| | float64 max diff | float64 max |out| "
          "| float32 - float64 | cond(BtB+lI) | cond(BBt+lI) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in range(5):
        print(measure(f"random, seed {seed}", random_label_graph(seed), seed, args.width, args.layers))
    for vocabulary in ("mirflickr", "nuswide", "voc", "mscoco"):
        graph = load_label_vocabulary(vocabulary).build_graph(kind="cooccurrence", threshold=0.4)
        print(measure(vocabulary, graph, 0, args.width, args.layers))


if __name__ == "__main__":
    main()
