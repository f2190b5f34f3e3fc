"""Every registered encoder trains inside the full model with the full objective."""
from __future__ import annotations

import pytest
import torch

from gcnretrieval.encoders import available_encoders
from gcnretrieval.graphs import build_label_graph
from gcnretrieval.losses import Objective
from gcnretrieval.models import CrossModalModel, count_parameters, parameter_breakdown

N, D_V, D_T, C, F_NODE, D = 16, 12, 10, 5, 6, 16


def synthetic_batch():
    g = torch.Generator().manual_seed(3)
    labels = (torch.rand(N, C, generator=g) < 0.35).float()
    labels[torch.arange(N), torch.arange(N) % C] = 1.0  # every pair has at least one label
    signal = labels @ torch.randn(C, D_V, generator=g)
    image = signal + 0.5 * torch.randn(N, D_V, generator=g)
    text = (labels @ torch.rand(C, D_T, generator=g)) + 0.1 * torch.rand(N, D_T, generator=g)
    node_features = torch.randn(C, F_NODE, generator=g)
    return image, text, labels, node_features


def objective_value(model, objective, image, text, labels) -> float:
    # Training mode with dropout off: BatchNorm uses the batch's own statistics, so the
    # value is a deterministic function of the parameters (running statistics unused).
    with torch.no_grad():
        total, _ = objective(model(image, text), labels)
    return float(total)


@pytest.mark.parametrize("encoder", available_encoders())
def test_twenty_adam_steps_lower_the_objective(encoder):
    torch.manual_seed(0)
    image, text, labels, node_features = synthetic_batch()
    graph = build_label_graph(labels, node_features)
    model = CrossModalModel(D_V, D_T, graph, encoder=encoder,
                            encoder_options={"num_layers": 2, "dropout": 0.0}, common_dim=D,
                            image_to_text_hidden=8, text_to_image_hidden=8,
                            image_discriminator_hidden=(8, 4))
    objective = Objective()
    lam = list(objective.parameters())
    assert lam, "the objective's learnable weight must reach the optimizer"
    optimizer = torch.optim.Adam(list(model.parameters()) + lam, lr=1e-3)
    model.train()

    start = objective_value(model, objective, image, text, labels)
    lam_start = [p.detach().clone() for p in lam]
    for _ in range(20):
        optimizer.zero_grad()
        total, parts = objective(model(image, text), labels)
        total.backward()
        optimizer.step()
    end = objective_value(model, objective, image, text, labels)

    assert torch.isfinite(torch.tensor([start, end])).all()
    assert end < start, f"{encoder}: objective {start:.4f} -> {end:.4f}"
    assert any(not torch.equal(a, b) for a, b in zip(lam_start, lam))  # lambda was trained
    assert count_parameters(model.label_encoder) > 0


def test_parameter_breakdown_adds_up():
    image, text, labels, node_features = synthetic_batch()
    model = CrossModalModel(D_V, D_T, build_label_graph(labels, node_features),
                            encoder_options={"num_layers": 2}, common_dim=D)
    counts = parameter_breakdown(model)
    parts = sum(v for k, v in counts.items() if k != "total")
    assert parts == counts["total"] == sum(p.numel() for p in model.parameters())
    # projectors: BN (2 d_in) + Linear (d_in d + d) for each modality
    assert counts["projectors"] == (2 * D_V + D_V * D + D) + (2 * D_T + D_T * D + D)
    assert counts["label_graph"] == 0
