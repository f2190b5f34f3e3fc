"""DSCMR (Zhen et al., CVPR 2019): the model's formulas and shapes, the objective against the loop references."""
from __future__ import annotations

import pytest

from gcnretrieval.config import Recipe
import torch

import dscmr_references as ref
from gcnretrieval.errors import ConfigError
from gcnretrieval.methods.dscmr import DSCMRModel, DSCMRObjective, DSCMROutput


def small_model(**kw):
    torch.manual_seed(0)
    return DSCMRModel(image_dim=5, text_dim=4, num_labels=3, hidden_dim=6, common_dim=2, **kw).double()


def loop_linear(lin, x):
    """W x + b, one output at a time."""
    w, b = lin.weight, lin.bias
    out = []
    for o in range(w.shape[0]):
        z = sum(w[o, k] * x[k] for k in range(w.shape[1]))
        out.append(z + b[o] if b is not None else z)
    return torch.stack(out)


def loop_forward(model, own_layer, x):
    """u = W_s ReLU(W_own x + b_own) + b_s and the label scores P^T u (+ b)."""
    h = torch.stack([torch.clamp(z, min=0) for z in loop_linear(own_layer, x)])
    u = loop_linear(model.shared_layer, h)
    return u, loop_linear(model.classifier, u)


@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_the_equations(bias):
    model = small_model(classifier_bias=bias)
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    text = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = model(image, text)
        for i in range(3):
            u, pu = loop_forward(model, model.image_layer, image[i])
            v, pv = loop_forward(model, model.text_layer, text[i])
            torch.testing.assert_close(out.image_embedding[i], u)
            torch.testing.assert_close(out.text_embedding[i], v)
            torch.testing.assert_close(out.image_label_scores[i], pu)
            torch.testing.assert_close(out.text_label_scores[i], pv)
    assert (model.classifier.bias is not None) == bias


def test_shapes_sharing_and_embeddings():
    model = DSCMRModel(image_dim=12, text_dim=9, num_labels=4, hidden_dim=8, common_dim=6)
    image, text = torch.randn(5, 12), torch.randn(5, 9)
    out = model(image, text)
    assert out.image_embedding.shape == out.text_embedding.shape == (5, 6)
    assert out.image_label_scores.shape == out.text_label_scores.shape == (5, 4)
    torch.testing.assert_close(model.embed_image(image), out.image_embedding)
    torch.testing.assert_close(model.embed_text(text), out.text_embedding)
    # the last layer and the classifier are one module each, used by both modalities
    names = {name for name, _ in model.named_parameters()}
    assert names == {"image_layer.weight", "image_layer.bias", "text_layer.weight", "text_layer.bias",
                     "shared_layer.weight", "shared_layer.bias", "classifier.weight"}
    out.image_label_scores.sum().backward()
    assert model.shared_layer.weight.grad.abs().sum() > 0 and model.text_layer.weight.grad is None
    before = model.shared_layer.weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.shared_layer.weight)


def test_model_defaults_and_bad_options():
    model = DSCMRModel(image_dim=7, text_dim=3, num_labels=2)
    assert (model.hidden_dim, model.common_dim) == (2048, 1024)
    assert "common_dim=1024" in repr(model)
    with pytest.raises(ConfigError, match="common_dim"):
        DSCMRModel(image_dim=7, text_dim=3, num_labels=2, common_dim=0)
    with pytest.raises(ConfigError, match="hidden_dim"):
        DSCMRModel(image_dim=7, text_dim=3, num_labels=2, hidden_dim=1.5)


@pytest.mark.parametrize("norm, similarity", [("frobenius", "shared"), ("rows", "count")])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_objective_is_the_weighted_sum_of_the_loop_references(norm, similarity, dtype):
    gen = torch.Generator().manual_seed(2)
    n, d, c = 6, 4, 3
    fields = [torch.randn(n, k, generator=gen, dtype=torch.float64) for k in (d, d, c, c)]
    labels = (torch.rand(n, c, generator=gen) < 0.5).double()
    labels[0] = labels[1] = 1
    ours_in = [f.detach().clone().to(dtype).requires_grad_(True) for f in fields]
    ref_in = [f.clone().requires_grad_(True) for f in fields]
    objective = DSCMRObjective(common_space_weight=0.3, invariance_weight=0.7, norm=norm, similarity=similarity)
    total, parts = objective(DSCMROutput(*ours_in), labels.to(dtype))
    u, v, p, q = ref_in
    j1 = ref.label_space(p, q, labels, norm)
    j2 = ref.common_space(u, v, labels, similarity)
    j3 = ref.modality_invariance(u, v, norm)
    expected = j1 + 0.3 * j2 + 0.7 * j3
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(total.double(), expected, **tol)
    assert set(parts) == set(DSCMRObjective.parts)
    for name, value in (("label_space", j1), ("common_space", j2), ("invariance", j3), ("total", expected)):
        assert not parts[name].requires_grad
        torch.testing.assert_close(parts[name].double(), value.detach(), **tol)
    total.backward()
    expected.backward()
    for ours, theirs in zip(ours_in, ref_in):
        torch.testing.assert_close(ours.grad.double(), theirs.grad, **tol)


def test_objective_under_autocast_is_computed_in_float32():
    gen = torch.Generator().manual_seed(3)
    fields = [torch.randn(8, k, generator=gen) for k in (6, 6, 4, 4)]
    labels = (torch.rand(8, 4, generator=gen) < 0.5).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = DSCMRObjective()(DSCMROutput(*fields), labels)
    u, v, p, q = (f.double() for f in fields)
    y = labels.double()
    expected = ref.label_space(p, q, y) + 1e-3 * ref.common_space(u, v, y) + 0.1 * ref.modality_invariance(u, v)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total.double(), expected, rtol=1e-5, atol=0)


def test_objective_defaults_and_bad_options():
    objective = DSCMRObjective()
    assert (objective.common_space_weight, objective.invariance_weight) == (1e-3, 0.1)
    assert (objective.norm, objective.similarity) == ("frobenius", "shared")
    with pytest.raises(ConfigError, match="invariance_weight"):
        DSCMRObjective(invariance_weight=-1.0)
    with pytest.raises(ConfigError, match="did you mean 'count'"):
        DSCMRObjective(similarity="counts")


# --- the method: preset, registration, a short run -------------------------------------------

TINY = {"run": {"name": "dscmr", "seed": 0},
        "data": {"source": "synthetic", "synthetic": {"num_train": 90, "num_test": 24, "num_labels": 5,
                                                      "image_dim": 16, "text_dim": 12}},
        "graph": {"node_features": "random"}, "encoder": {"name": "gcn", "num_layers": 2},
        "model": {"common_dim": 32}, "loss": {"alpha": 2.0}, "train": {"batch_size": 40, "device": "cpu"}}


def test_the_preset_holds_the_papers_training_defaults_and_drops_the_label_graph():
    from gcnretrieval.losses.registry import OBJECTIVES
    from gcnretrieval.methods import METHODS, apply_method
    from gcnretrieval.models.registry import MODELS

    assert MODELS.get("dscmr") is DSCMRModel and OBJECTIVES.get("dscmr") is DSCMRObjective
    tree = apply_method(TINY, "dscmr")
    assert "graph" not in tree and "encoder" not in tree
    assert tree["model"] == {"name": "dscmr"} and tree["loss"] == {"name": "dscmr"}
    assert tree["train"] == {"batch_size": 100, "device": "cpu", "optimizer": "adam", "lr": 1e-4,
                             "betas": [0.5, 0.999], "weight_decay": 0.0, "epochs": 500}
    assert "CVPR 2019" in METHODS.get("dscmr").paper


def test_the_search_space_is_made_of_dscmr_recipe_keys():
    from gcnretrieval.config import load_config
    from gcnretrieval.experiments.tune import search_space
    from gcnretrieval.methods import apply_method

    tree = apply_method(TINY, "dscmr")
    assert set(tree["tune"]["space"]) == {"train.lr", "model.common_dim", "loss.common_space_weight",
                                          "loss.invariance_weight"}
    load_config(tree)
    assert {key.key for key in search_space(Recipe.of(tree))} == set(tree["tune"]["space"])


def test_a_recipe_key_dscmr_would_ignore_is_refused():
    from gcnretrieval.config import load_config
    from gcnretrieval.methods import apply_method

    tree = apply_method(TINY, "dscmr")
    with pytest.raises(ConfigError, match="model.num_layers"):
        load_config({**tree, "model": {"name": "dscmr", "num_layers": 2}})
    with pytest.raises(ConfigError, match="graph"):
        load_config({**tree, "graph": {"node_features": "random"}})
    assert load_config({**tree, "loss": {"name": "dscmr", "norm": "rows", "similarity": "count"}})


def test_two_epochs_through_apply_method_and_run(tmp_path):
    import json

    import gcnretrieval
    from gcnretrieval.methods import apply_method

    raw = apply_method(TINY, "dscmr")
    result = gcnretrieval.run(raw, {"train.epochs": 2, "train.batch_size": 40, "train.lr": 1e-3},
                              out=tmp_path / "run", progress=False)
    assert 0.0 <= result.test["avg_map"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        for part in DSCMRObjective.parts:
            assert row[f"loss_{part}"] > 0
        expected = row["loss_label_space"] + 1e-3 * row["loss_common_space"] + 0.1 * row["loss_invariance"]
        assert row["loss_total"] == pytest.approx(expected, rel=1e-5)
