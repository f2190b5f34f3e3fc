"""DAGNN and I-GNN-CON: their presets through apply_method, the DAGNN objective against plain loops."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import gcnretrieval
from gcnretrieval.config import load_config, with_seed
from gcnretrieval.encoders.gcn import OutDegreeGCNConv
from gcnretrieval.graphs import AdaptiveLabelGraph
from gcnretrieval.losses import Objective
from gcnretrieval.methods import apply_method
from gcnretrieval.methods.dagnn import DAGNNObjective
from gcnretrieval.training.experiment import build_experiment
from loss_references import soft_contrastive

RECIPE = {"run": {"name": "g", "seed": 0},
          "data": {"source": "synthetic", "synthetic": {"num_train": 80, "num_test": 24, "num_labels": 5,
                                                        "image_dim": 24, "text_dim": 20}},
          "graph": {"node_features": "random"}, "encoder": {"name": "l2gcn", "num_layers": 2},
          "model": {"common_dim": 16}, "loss": {"alpha": 3.0}, "train": {"device": "cpu"}}
SMALL = {"model.common_dim": 16, "encoder.num_layers": 2, "train.batch_size": 20, "train.epochs": 1}


def experiment(name: str):
    return build_experiment(with_seed(load_config(apply_method(RECIPE, name), SMALL)))


def test_dagnn_preset_builds_the_release_network():
    exp = experiment("dagnn")
    model = exp.model
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert not any(isinstance(m, nn.ReLU) for d in (model.image_discriminator, model.text_discriminator)
                   for m in d.modules())
    assert model.image_discriminator.hidden_channels == (6, 1) and model.text_discriminator.hidden_channels == (5, 1)
    assert all(isinstance(conv, OutDegreeGCNConv) and conv.bias is None for conv in model.label_encoder.convs)
    assert isinstance(exp.objective, DAGNNObjective) and (exp.objective.alpha, exp.objective.beta) == (0.2, 0.2)
    assert exp.config.train.lr == 5e-5 and exp.config.train.betas == (0.5, 0.999)


def test_ignn_con_preset_is_the_adaptive_graph_without_the_circle_term():
    exp = experiment("ignn_con")
    graph = exp.model.label_graph
    assert isinstance(graph, AdaptiveLabelGraph) and graph.num_weights == 8 and graph.prior_weights == "cosine"
    assert isinstance(exp.objective, Objective)
    assert exp.objective.circle_soft.term_weights() == (0.0, 1.0)
    assert (exp.objective.alpha, exp.objective.beta) == (0.5, 2.0)
    assert list(exp.objective.parameters()) == []  # lambda is fixed, not learned


@pytest.mark.parametrize("name", ["dagnn", "ignn_con"])
def test_presets_train_end_to_end(name, tmp_path):
    result = gcnretrieval.run(apply_method(RECIPE, name), SMALL, out=tmp_path / name, progress=False)
    assert all(math.isfinite(result.test[k]) for k in ("i2t_map", "t2i_map", "avg_map"))
    assert math.isfinite(result.history[-1]["loss_total"])


@dataclass
class Output:
    image_embedding: torch.Tensor
    text_embedding: torch.Tensor
    image_label_scores: torch.Tensor
    text_label_scores: torch.Tensor
    image_real_logits: torch.Tensor
    image_fake_logits: torch.Tensor
    text_fake_logits: torch.Tensor
    text_real_logits: torch.Tensor


def make_output(dtype, n=6, d=4, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    fields = {"image_embedding": (n, d), "text_embedding": (n, d), "image_label_scores": (n, c),
              "text_label_scores": (n, c), "image_real_logits": (n, 2), "image_fake_logits": (n, 2),
              "text_fake_logits": (n, 2), "text_real_logits": (n, 2)}
    output = Output(**{k: torch.randn(*s, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
                       for k, s in fields.items()})
    labels = (torch.rand(n, c, generator=g) < 0.5).to(dtype)
    labels[:, 0] = 1.0
    return output, labels


def loop_classification(out, y):
    n, c = y.shape
    return sum(sum(math.sqrt(sum((float(s[i, j]) - float(y[i, j])) ** 2 for j in range(c))) for i in range(n)) / n
               for s in (out.image_label_scores, out.text_label_scores))


def loop_adversarial(out):
    def ce(logits, target):
        rows = logits.tolist()
        return sum(math.log(sum(math.exp(v) for v in row)) - row[target] for row in rows) / len(rows)
    return (ce(out.image_real_logits, 1) + ce(out.image_fake_logits, 0) + ce(out.text_fake_logits, 1)
            + ce(out.text_real_logits, 0))


def loop_pair_likelihood(out, y):
    v, t, lab = out.image_embedding.tolist(), out.text_embedding.tolist(), y.tolist()
    n = len(lab)

    def dot(a, b):
        return sum(p * q for p, q in zip(a, b))

    total = 0.0
    for a, b in ((v, v), (v, t), (t, t)):
        total += sum(math.log1p(math.exp(dot(a[i], b[j]) / math.sqrt(dot(a[i], a[i]) * dot(b[j], b[j])) / 2))
                     - dot(lab[i], lab[j]) * dot(a[i], b[j]) / math.sqrt(dot(a[i], a[i]) * dot(b[j], b[j])) / 2
                     for i in range(n) for j in range(n)) / n ** 2
    return total


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dagnn_objective_matches_plain_loops(dtype):
    out, y = make_output(dtype)
    total, parts = DAGNNObjective(alpha=0.3, beta=0.7)(out, y)
    detached = Output(**{k: v.detach().double() for k, v in vars(out).items()})
    cla, pl, adv = loop_classification(detached, y), loop_pair_likelihood(detached, y), loop_adversarial(detached)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert parts["classification"].item() == pytest.approx(cla, rel=tol)
    assert parts["discrimination"].item() == pytest.approx(pl, rel=tol)
    assert parts["adversarial"].item() == pytest.approx(adv, rel=tol)
    assert total.item() == pytest.approx(cla + 0.3 * pl + 0.7 * adv, rel=tol)
    assert set(parts) == set(DAGNNObjective.parts)
    total.backward()
    assert all(torch.isfinite(v.grad).all() for v in vars(out).values())


def test_dagnn_objective_upcasts_half_precision_outputs():
    out, y = make_output(torch.bfloat16, seed=1)
    total, _ = DAGNNObjective()(out, y)
    assert total.dtype == torch.float32


def test_ignn_con_objective_is_soft_plus_weighted_classification_and_adversarial():
    from gcnretrieval.methods.ignn_con import PRESET

    loss = {k[len("loss."):]: v for k, v in PRESET.items() if k.startswith("loss.") and k != "loss.name"}
    out, y = make_output(torch.float64, seed=2)
    total, parts = Objective(**loss)(out, y)
    detached = Output(**{k: v.detach() for k, v in vars(out).items()})
    soft = soft_contrastive(detached.image_embedding, detached.text_embedding, y, tau=0.22, gamma_s=0.14)
    expected = float(soft) + 0.5 * loop_classification(detached, y) + 2.0 * loop_adversarial(detached)
    assert total.item() == pytest.approx(expected, rel=1e-10)
    assert parts["lambda"].item() == 0.0
