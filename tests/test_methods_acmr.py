"""ACMR's model (shapes, gradient reversal, retrieval embeddings) and objective (the weighted sum)."""
from __future__ import annotations

import pytest

from gcnretrieval.config import Recipe
import torch

from gcnretrieval.errors import DataError, InvalidArgument
from gcnretrieval.losses import (
    cross_modal_triplet_loss,
    frobenius_regularization,
    label_prediction_loss,
    modality_classification_loss,
)
from gcnretrieval.methods.acmr import ACMRModel, ACMRObjective

D_V, D_T, C = 12, 9, 4


def small_model(**kwargs):
    torch.manual_seed(0)
    options = {"common_dim": 8, "image_hidden": (16,), "text_hidden": (10, 6), "classifier_hidden": (4, 2)}
    return ACMRModel(image_dim=D_V, text_dim=D_T, num_labels=C, **{**options, **kwargs})


def batch(n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, C, generator=gen) < 0.4).float()
    labels[0, 0] = labels[1, 0] = 1.0
    labels[2] = 0.0
    labels[2, 1] = 1.0
    return torch.randn(n, D_V, generator=gen), torch.randn(n, D_T, generator=gen), labels


def test_shapes_and_layers():
    model = small_model()
    image, text, _ = batch()
    out = model(image, text)
    assert out.image_embedding.shape == out.text_embedding.shape == (6, 8)
    assert out.image_label_logits.shape == out.text_label_logits.shape == (6, C)
    assert out.image_modality_logits.shape == out.text_modality_logits.shape == (6, 2)
    # tanh after every projector layer: the embeddings lie in (-1, 1)
    assert out.image_embedding.abs().max() < 1 and out.text_embedding.abs().max() < 1
    assert [w.shape for w in out.projector_weights] == [(16, D_V), (8, 16), (10, D_T), (6, 10), (8, 6)]
    torch.testing.assert_close(model.embed_image(image), out.image_embedding)
    torch.testing.assert_close(model.embed_text(text), out.text_embedding)


def test_paper_widths_by_default():
    model = ACMRModel(image_dim=D_V, text_dim=D_T, num_labels=C)
    assert [lin.out_channels for lin in model.image_projector.lins] == [2000, 200]
    assert [lin.out_channels for lin in model.text_projector.lins] == [500, 200]
    assert [lin.out_channels for lin in model.modality_classifier.lins] == [100, 50, 2]
    assert model.label_classifier.out_features == C


def test_projector_is_tanh_of_linear_layers():
    model = small_model()
    image, _, _ = batch()
    first, last = model.image_projector.lins
    expected = torch.tanh(last(torch.tanh(first(image))))
    torch.testing.assert_close(model.embed_image(image), expected)


def test_modality_classifier_gradient_is_reversed_at_the_embeddings():
    model = small_model(grl_coefficient=0.5)
    image, text, _ = batch()
    v = model.embed_image(image).detach().requires_grad_(True)
    loss = modality_classification_loss(model.modality_classifier(model.grl(v)),
                                         model.modality_classifier(model.embed_text(text).detach()))
    (reversed_grad,) = torch.autograd.grad(loss, v)
    v2 = v.detach().clone().requires_grad_(True)
    plain = modality_classification_loss(model.modality_classifier(v2),
                                         model.modality_classifier(model.embed_text(text).detach()))
    (plain_grad,) = torch.autograd.grad(plain, v2)
    torch.testing.assert_close(reversed_grad, -0.5 * plain_grad)
    model.grl_coefficient = 1.0
    assert model.grl_coefficient == 1.0


def test_objective_is_the_weighted_sum_of_the_terms():
    model = small_model()
    image, text, labels = batch()
    out = model(image, text)
    objective = ACMRObjective(alpha=0.7, beta=3.0, margin=2.5, negative_weight=0.4, reg_weight=0.2)
    total, parts = objective(out, labels)
    expected = {
        "triplet": cross_modal_triplet_loss(out.image_embedding, out.text_embedding, labels, 2.5, 0.4),
        "label": label_prediction_loss(out.image_label_logits, out.text_label_logits, labels),
        "modality": modality_classification_loss(out.image_modality_logits, out.text_modality_logits),
        "regularization": frobenius_regularization(out.projector_weights),
    }
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value.detach())
    weighted = 0.7 * expected["triplet"] + 3.0 * expected["label"] + 0.2 * expected["regularization"] + expected["modality"]
    torch.testing.assert_close(total, weighted)
    assert set(parts) == set(ACMRObjective.parts)
    assert all(not value.requires_grad for value in parts.values())
    total.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_one_step_lowers_the_modality_loss_for_the_classifier_only():
    model = small_model()
    image, text, labels = batch()
    objective = ACMRObjective(alpha=0.0, beta=0.0, reg_weight=0.0)
    total, parts = objective(model(image, text), labels)
    total.backward()
    with torch.no_grad():  # a small step of the classifier alone descends the loss
        for p in model.modality_classifier.parameters():
            p -= 1e-2 * p.grad
    _, after = objective(model(image, text), labels)
    assert after["modality"] < parts["modality"]


def test_bad_inputs_and_options_raise_one_clear_error():
    model = small_model()
    image, text, _ = batch()
    with pytest.raises(DataError, match="image_dim=12"):
        model(image[:, :5], text)
    with pytest.raises(DataError, match="paired row by row"):
        model(image, text[:4])
    with pytest.raises(DataError, match="NaN"):
        model(image.index_fill(0, torch.tensor([0]), float("nan")), text)
    with pytest.raises(InvalidArgument, match="common_dim"):
        ACMRModel(image_dim=D_V, text_dim=D_T, num_labels=C, common_dim=0)
    with pytest.raises(InvalidArgument, match="image_hidden"):
        ACMRModel(image_dim=D_V, text_dim=D_T, num_labels=C, image_hidden=(0,))
    with pytest.raises(InvalidArgument, match="beta"):
        ACMRObjective(beta=-1.0)


# --- the method: preset and a tiny run -------------------------------------------------------

TINY_RECIPE = {
    "run": {"name": "acmr_tiny", "seed": 0},
    "data": {"source": "synthetic", "synthetic": {"num_train": 120, "num_test": 30, "num_labels": 5,
                                                  "image_dim": 16, "text_dim": 12}},
    "graph": {"node_features": "random", "threshold": 0.3},
    "encoder": {"name": "gcn", "num_layers": 2},
    "model": {"common_dim": 32},
    "loss": {"alpha": 2.0},
    "train": {"batch_size": 40, "device": "cpu"},
}


def test_preset_holds_the_paper_defaults_and_drops_the_label_graph():
    from gcnretrieval.methods import METHODS, apply_method
    from gcnretrieval.methods import acmr

    tree = apply_method(TINY_RECIPE, "acmr")
    assert "graph" not in tree and "encoder" not in tree
    assert tree["model"] == {"name": "acmr", "common_dim": acmr.COMMON_DIM, "image_hidden": [2000],
                             "text_hidden": [500], "classifier_hidden": [100, 50], "grl_coefficient": 1.0}
    assert tree["loss"] == {"name": "acmr", "alpha": acmr.ALPHA, "beta": acmr.BETA, "margin": 0.1,
                            "negative_weight": 1.0, "reg_weight": 1.0}
    assert tree["train"] == {"batch_size": 64, "device": "cpu", "lr": 1e-4, "betas": [0.5, 0.999], "epochs": 50}
    assert METHODS.get("acmr").paper.startswith("Wang, Yang, Xu, Hanjalic, Shen")


def test_the_search_space_of_compare_tune_is_valid_for_the_method():
    from gcnretrieval.experiments.tune import search_space
    from gcnretrieval.methods import apply_method

    tree = apply_method(TINY_RECIPE, "acmr")
    keys = {entry.key for entry in search_space(Recipe.of(tree))}
    assert keys == {"train.lr", "train.epochs", "model.common_dim", "loss.alpha", "loss.beta", "loss.margin"}


def test_a_tiny_run_trains_and_logs_every_part(tmp_path):
    import json
    import math

    import gcnretrieval
    from gcnretrieval.methods import apply_method

    raw = apply_method(TINY_RECIPE, "acmr")
    overrides = {"train.epochs": 2, "train.batch_size": 40, "model.common_dim": 16, "model.image_hidden": [24],
                 "model.text_hidden": [20], "model.classifier_hidden": [8, 4]}
    result = gcnretrieval.run(raw, overrides, out=tmp_path / "run", progress=False)
    assert all(0.0 <= result.test[key] <= 1.0 for key in ("i2t_map", "t2i_map", "avg_map"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for name in ACMRObjective.parts:
        assert all(math.isfinite(row[f"loss_{name}"]) for row in rows), name
    resolved = json.loads((tmp_path / "run" / "config.resolved.json").read_text())
    assert resolved["model"]["name"] == "acmr" and resolved["model"]["image_hidden"] == [24]
