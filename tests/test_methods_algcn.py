"""The ``algcn`` method: model shapes and formula, objective composition, preset, a short run."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import gcnretrieval
from gcnretrieval.errors import ConfigError
from gcnretrieval.graphs import build_label_graph
from gcnretrieval.losses import adjacency_supervision_loss, classification_loss, common_space_discrimination_loss
from gcnretrieval.methods import METHODS, apply_method
from gcnretrieval.methods.algcn import PAPER, ALGCNModel, ALGCNObjective
from gcnretrieval.models.registry import MODELS
from gcnretrieval.losses.registry import OBJECTIVES

RECIPE = {"run": {"name": "algcn", "seed": 0},
          "data": {"source": "synthetic", "synthetic": {"num_train": 120, "num_test": 30, "num_labels": 5,
                                                        "image_dim": 16, "text_dim": 12}},
          "graph": {"node_features": "random", "threshold": 0.3},
          "encoder": {"name": "l2gcn", "num_layers": 5, "count_self": True},
          "model": {"common_dim": 32}, "loss": {"alpha": 2.0}, "train": {"batch_size": 40, "device": "cpu"}}


def tiny_graph(c=5, f=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.rand(60, c, generator=gen) < 0.35).long()
    labels[:c] |= torch.eye(c, dtype=torch.long)
    return labels, build_label_graph(labels, torch.randn(c, f, generator=gen), threshold=0.4)


def test_model_outputs_and_retrieval_embeddings():
    torch.manual_seed(0)
    _, graph = tiny_graph()
    model = ALGCNModel(16, 12, graph, common_dim=8)
    out = model(torch.randn(4, 16), torch.randn(4, 12))
    assert out.image_embedding.shape == out.text_embedding.shape == (4, 8)
    assert out.label_embedding.shape == (5, 8)
    assert out.image_label_scores.shape == out.text_label_scores.shape == (4, 5)
    assert out.adjacency.shape == out.prior_adjacency.shape == (5, 5)
    torch.testing.assert_close(model.embed_image(torch.ones(3, 16)), model(torch.ones(3, 16), torch.ones(3, 12)).image_embedding)
    assert len(model.label_encoder.convs) == 3  # the paper's encoder when none is given
    assert all(conv.bias is None and not conv.normalize for conv in model.label_encoder.convs)
    model.reset_parameters()


def test_classifiers_follow_the_dense_formula_float64():
    r"""C = [H1 | H2 | H3] W + b, H_l = LeakyReLU(A_hat H_{l-1} W_l), scores = cos(v, c)."""
    torch.manual_seed(1)
    _, graph = tiny_graph(seed=1)
    model = ALGCNModel(16, 12, graph, common_dim=8).double()
    image, text = torch.randn(4, 16, dtype=torch.float64), torch.randn(4, 12, dtype=torch.float64)
    out = model(image, text)
    a_hat = out.adjacency
    h, layers = model.label_graph.x, []
    for conv in model.label_encoder.convs:
        h = F.leaky_relu(a_hat @ h @ conv.lin.weight.T, 0.2)
        layers.append(h)
    c = torch.cat(layers, dim=1) @ model.label_encoder.lin.weight.T + model.label_encoder.lin.bias
    torch.testing.assert_close(out.label_embedding, c, rtol=1e-12, atol=1e-12)
    v = torch.relu(image @ model.image_projector.lins[0].weight.T + model.image_projector.lins[0].bias).detach()
    c = c.detach()
    expected = [[float(v[i] @ c[j]) / (float(v[i].norm()) * float(c[j].norm())) for j in range(5)] for i in range(4)]
    torch.testing.assert_close(out.image_label_scores, torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-10, atol=1e-12)


def test_objective_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(2)
    labels, graph = tiny_graph(seed=2)
    model = ALGCNModel(16, 12, graph, common_dim=8).double()
    out = model(torch.randn(6, 16, dtype=torch.float64), torch.randn(6, 12, dtype=torch.float64))
    y = labels[:6].double()
    objective = ALGCNObjective(alpha=0.3, beta=0.7, num_draws=2)
    torch.manual_seed(5)
    total, parts = objective(out, y)
    torch.manual_seed(5)
    masks = torch.stack([torch.bernoulli(torch.full_like(out.adjacency, 0.2)) for _ in range(2)])
    cla = classification_loss(out.image_label_scores, out.text_label_scores, y)
    pair = common_space_discrimination_loss(out.image_embedding, out.text_embedding, y, similarity="count")
    sup = adjacency_supervision_loss(out.adjacency, out.prior_adjacency, masks)
    assert set(parts) == set(ALGCNObjective.parts)
    assert total.item() == pytest.approx((cla + 0.3 * pair + 0.7 * sup).item(), rel=1e-12)
    assert parts["supervision"].item() == pytest.approx(sup.item(), rel=1e-12)
    assert all(not value.requires_grad for value in parts.values())
    total.backward()
    assert model.label_graph.residual.grad.abs().sum() > 0


def test_preset_replaces_model_loss_and_encoder_and_keeps_the_dataset_graph_keys():
    assert MODELS.get("algcn") is ALGCNModel and OBJECTIVES.get("algcn") is ALGCNObjective
    method = METHODS.get("algcn")
    assert method.uses_label_graph and "TMM" in method.paper
    tree = apply_method(RECIPE, "algcn")
    assert tree["encoder"] == {"name": "gcn", "num_layers": 3, "normalize": False, "bias": False}
    assert tree["model"]["name"] == "algcn" and tree["model"]["common_dim"] == 1024
    assert tree["loss"] == {"name": "algcn", "alpha": 0.2, "beta": 0.5, "negative_ratio": 0.2, "num_draws": 3}
    assert tree["graph"] == {"node_features": "random", "threshold": 0.4, "kind": "cooccurrence"}
    assert tree["train"] == {"batch_size": 100, "device": "cpu", "lr": 5e-5, "betas": [0.5, 0.999], "epochs": 30}
    assert dict(method.preset) == PAPER


def test_two_epochs_through_apply_method(tmp_path):
    raw = apply_method(RECIPE, "algcn")
    result = gcnretrieval.run(raw, {"train.epochs": 2, "train.batch_size": 40, "model.common_dim": 16},
                              out=str(tmp_path / "run"), progress=False)
    assert len(result.history) == 2
    for row in result.history:
        for part in ALGCNObjective.parts:
            assert math.isfinite(row[f"loss_{part}"])
    assert 0.0 <= result.test["avg_map"] <= 1.0


def test_an_adaptive_graph_kind_is_refused_with_one_line():
    raw = apply_method(RECIPE, "algcn")
    raw["graph"]["kind"] = "adaptive"
    with pytest.raises(ConfigError, match="graph.kind"):
        gcnretrieval.run(raw, {"train.epochs": 1, "train.batch_size": 40}, out=None, progress=False)
