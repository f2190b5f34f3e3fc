"""CrossModalModel: outputs, label scores, gradient reversal, label-graph handling, bad input."""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from torch import nn
from torch_geometric.data import Data

from gcnretrieval.errors import ConfigError, DataError, GcnRetrievalError, GraphError
from gcnretrieval.losses import adversarial_loss
from gcnretrieval.models import CrossModalModel, CrossModalOutput, StaticLabelGraph

D_V, D_T, C, F_NODE, D, N = 12, 10, 5, 6, 8, 7


def tiny_graph() -> Data:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(C, F_NODE, generator=g)
    src = [0, 1, 1, 2, 3, 0, 1, 2, 3, 4]
    dst = [1, 0, 2, 1, 2, 0, 1, 2, 3, 4]  # label 4 has only its self-loop
    weight = [0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    return Data(x=x, edge_index=torch.tensor([src, dst]), edge_weight=torch.tensor(weight),
                num_nodes=C)


def tiny_model(**kwargs) -> CrossModalModel:
    kwargs.setdefault("encoder", "l2gcn")
    kwargs.setdefault("encoder_options", {"num_layers": 2})
    return CrossModalModel(D_V, D_T, tiny_graph(), common_dim=D, image_to_text_hidden=6,
                           text_to_image_hidden=9, image_discriminator_hidden=(6, 4),
                           text_discriminator_hidden=(5, 4), **kwargs)


def tiny_batch(dtype=torch.float32, n=N):
    g = torch.Generator().manual_seed(2)
    return (torch.randn(n, D_V, generator=g, dtype=dtype),
            torch.rand(n, D_T, generator=g, dtype=dtype))


def test_output_fields_are_the_documented_ones():
    names = [f.name for f in dataclasses.fields(CrossModalOutput)]
    assert names == ["image_embedding", "text_embedding", "label_embedding", "image_label_scores",
                     "text_label_scores", "image_real_logits", "image_fake_logits",
                     "text_fake_logits", "text_real_logits"]


def test_output_shapes():
    torch.manual_seed(0)
    model = tiny_model()
    out = model(*tiny_batch())
    assert out.image_embedding.shape == (N, D)
    assert out.text_embedding.shape == (N, D)
    assert out.label_embedding.shape == (C, D)
    assert out.image_label_scores.shape == (N, C)
    assert out.text_label_scores.shape == (N, C)
    for logits in (out.image_real_logits, out.image_fake_logits, out.text_fake_logits,
                   out.text_real_logits):
        assert logits.shape == (N, 2)
    for field in dataclasses.fields(out):
        assert bool(torch.isfinite(getattr(out, field.name)).all())
    assert (model.num_labels, model.node_feature_dim) == (C, F_NODE)


def test_embed_functions_equal_forward_embeddings_in_eval_mode():
    torch.manual_seed(0)
    model = tiny_model()
    image, text = tiny_batch()
    model.train()
    model(image, text)  # move BatchNorm running statistics away from their initial values
    model.eval()
    out = model(image, text)
    torch.testing.assert_close(model.embed_image(image), out.image_embedding, rtol=0, atol=0)
    torch.testing.assert_close(model.embed_text(text), out.text_embedding, rtol=0, atol=0)


def test_label_scores_equal_plain_loop_cosine():
    torch.manual_seed(0)
    model = tiny_model().double()
    out = model(*tiny_batch(torch.float64))
    for emb, scores in ((out.image_embedding, out.image_label_scores),
                        (out.text_embedding, out.text_label_scores)):
        e = emb.detach().tolist()
        c = out.label_embedding.detach().tolist()
        for i in range(N):
            for j in range(C):
                dot = sum(a * b for a, b in zip(e[i], c[j]))
                norm_i = math.sqrt(sum(a * a for a in e[i]))
                norm_j = math.sqrt(sum(b * b for b in c[j]))
                ref = dot / (norm_i * norm_j) if norm_i > 0 and norm_j > 0 else 0.0
                assert scores[i, j].item() == pytest.approx(ref, abs=1e-12)


def test_label_scores_of_a_zero_embedding_are_zero_with_finite_gradient():
    from gcnretrieval.models import cosine_scores

    emb = torch.zeros(2, 3, requires_grad=True)
    labels = torch.randn(4, 3, requires_grad=True)
    scores = cosine_scores(emb, labels)
    assert torch.equal(scores.detach(), torch.zeros(2, 4))
    scores.sum().backward()
    assert bool(torch.isfinite(emb.grad).all()) and bool(torch.isfinite(labels.grad).all())


def test_label_encoder_runs_once_per_forward():
    torch.manual_seed(0)
    model = tiny_model()
    calls = []
    model.label_encoder.register_forward_hook(lambda *args: calls.append(1))
    model(*tiny_batch())
    assert len(calls) == 1


def _capture_generator_outputs(model: CrossModalModel) -> dict[str, torch.Tensor]:
    captured: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(module, inputs, output):
            output.retain_grad()
            captured[name] = output
        return fn

    model.text_to_image.register_forward_hook(hook("text_to_image"))
    model.image_to_text.register_forward_hook(hook("image_to_text"))
    return captured


@pytest.mark.parametrize("coefficient", [1.0, 0.4])
def test_gradient_reversal_reaches_generators_and_projectors_but_not_discriminators(coefficient):
    torch.manual_seed(0)
    model = tiny_model(grl_coefficient=coefficient).double()
    # the same network with the reversal layers taken out
    plain = copy.deepcopy(model)
    plain.image_discriminator.grl = nn.Identity()
    plain.text_discriminator.grl = nn.Identity()
    image, text = tiny_batch(torch.float64)

    with_grl = _capture_generator_outputs(model)
    without_grl = _capture_generator_outputs(plain)
    adversarial_loss(model(image, text)).backward()
    adversarial_loss(plain(image, text)).backward()

    # gradient w.r.t. the generated features: g_with = -coefficient * g_without
    for name in ("text_to_image", "image_to_text"):
        g_with, g_without = with_grl[name].grad, without_grl[name].grad
        assert g_without.abs().max() > 1e-6
        torch.testing.assert_close(g_with, -coefficient * g_without, rtol=1e-12, atol=0)

    params = dict(plain.named_parameters())
    checked = {"reversed": 0, "kept": 0}
    for name, p in model.named_parameters():
        q = params[name]
        if name.startswith(("image_discriminator", "text_discriminator")):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=0)  # descend L_adv
            checked["kept"] += 1
        elif name.startswith(("image_projector", "text_projector", "image_to_text", "text_to_image")):
            # everything upstream of the discriminators ascends L_adv
            torch.testing.assert_close(p.grad, -coefficient * q.grad, rtol=1e-10, atol=1e-15)
            checked["reversed"] += 1
        else:  # the label encoder is not on any adversarial path
            assert p.grad is None or not p.grad.any()
    assert checked["kept"] > 0 and checked["reversed"] > 0
    assert any(q.grad.abs().max() > 1e-6 for n, q in params.items() if n.startswith("text_projector"))


def test_grl_coefficient_is_settable_and_not_in_state_dict():
    model = tiny_model(grl_coefficient=0.5)
    assert model.grl_coefficient == 0.5
    model.grl_coefficient = 0.1
    assert model.text_discriminator.grl.coefficient == 0.1
    assert not any("coefficient" in key for key in model.state_dict())


def test_static_graph_buffers_move_with_the_model_but_stay_out_of_checkpoints():
    model = tiny_model()
    assert isinstance(model.label_graph, StaticLabelGraph)
    buffers = dict(model.named_buffers())
    assert {"label_graph.x", "label_graph.edge_index", "label_graph.edge_weight"} <= set(buffers)
    assert not any(key.startswith("label_graph.") for key in model.state_dict())
    model.double()
    assert model.label_graph.x.dtype == torch.float64
    assert model.label_graph.edge_index.dtype == torch.long
    # a checkpoint loads strictly into a model rebuilt from the same data
    fresh = tiny_model().double()
    fresh.load_state_dict(model.state_dict())
    model.eval(), fresh.eval()
    image, text = tiny_batch(torch.float64)
    torch.testing.assert_close(fresh(image, text).image_label_scores, model(image, text).image_label_scores)


def test_graph_without_edge_weights_is_accepted():
    graph = tiny_graph()
    del graph.edge_weight
    model = CrossModalModel(D_V, D_T, graph, encoder_options={"num_layers": 2}, common_dim=D)
    assert model.label_graph.edge_weight is None
    assert model(*tiny_batch()).label_embedding.shape == (C, D)


class _LearnedGraph(nn.Module):
    """A graph module recomputing its triple on every call (like AdaptiveLabelGraph)."""

    def __init__(self, graph: Data) -> None:
        super().__init__()
        self.x = nn.Parameter(graph.x.clone())
        self.register_buffer("edge_index", graph.edge_index.clone())
        self.calls = 0

    def forward(self):
        self.calls += 1
        return self.x, self.edge_index, torch.ones(self.edge_index.size(1))


def test_graph_module_is_called_each_forward_and_trained():
    torch.manual_seed(0)
    graph = _LearnedGraph(tiny_graph())
    model = CrossModalModel(D_V, D_T, graph, encoder_options={"num_layers": 2}, common_dim=D)
    before = graph.calls
    out = model(*tiny_batch())
    assert graph.calls == before + 1
    out.image_label_scores.sum().backward()
    assert graph.x.grad is not None and graph.x.grad.abs().max() > 0


def test_real_adaptive_label_graph():
    from gcnretrieval.graphs import AdaptiveLabelGraph

    torch.manual_seed(0)
    graph = AdaptiveLabelGraph(tiny_graph().x)
    model = CrossModalModel(D_V, D_T, graph, encoder_options={"num_layers": 2}, common_dim=D)
    out = model(*tiny_batch())
    assert out.label_embedding.shape == (C, D)
    out.text_label_scores.sum().backward()
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in graph.parameters())


def test_projector_depth_option():
    model = tiny_model(projector_layers=3)
    assert len(model.image_projector.lins) == 3 and len(model.text_projector.lins) == 3
    assert model(*tiny_batch()).image_embedding.shape == (N, D)


# ---------------------------------------------------------------- bad input
def test_batch_size_mismatch_is_one_clear_error():
    image, text = tiny_batch()
    with pytest.raises(DataError, match=r"image batch has 7 rows but text batch has 5"):
        tiny_model()(image, text[:5])


@pytest.mark.parametrize("modality", ["image", "text"])
def test_wrong_feature_dimension_names_modality_expected_and_got(modality):
    image, text = tiny_batch()
    expected = D_V if modality == "image" else D_T
    if modality == "image":
        image = image[:, :-2]
    else:
        text = torch.cat([text, text[:, :3]], dim=1)
    got = expected - 2 if modality == "image" else expected + 3
    message = rf"{modality} features have {got} columns but the model expects {modality}_dim={expected}"
    with pytest.raises(DataError, match=message):
        tiny_model()(image, text)
    embed = tiny_model().embed_image if modality == "image" else tiny_model().embed_text
    with pytest.raises(DataError, match=message):
        embed(image if modality == "image" else text)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("modality", ["image", "text"])
def test_non_finite_input_is_rejected(bad, modality):
    image, text = tiny_batch()
    (image if modality == "image" else text)[3, 1] = bad
    with pytest.raises(DataError, match=rf"{modality} features contain NaN or infinite"):
        tiny_model()(image, text)


def test_other_bad_inputs():
    model = tiny_model()
    image, text = tiny_batch()
    with pytest.raises(DataError, match="2-D"):
        model(image[0], text)
    with pytest.raises(DataError, match="torch.Tensor"):
        model(image.numpy(), text)
    with pytest.raises(DataError, match="at least 2"):
        model(image[:1], text[:1])
    model.eval()  # a single pair is fine outside training
    assert model(image[:1], text[:1]).image_label_scores.shape == (1, C)
    # integer/float64 inputs are cast to the model's dtype
    assert model.embed_text(text.double()).dtype == torch.float32


def test_bad_construction():
    with pytest.raises(ConfigError, match="image_dim"):
        CrossModalModel(0, D_T, tiny_graph())
    with pytest.raises(ConfigError, match="projector_layers"):
        CrossModalModel(D_V, D_T, tiny_graph(), projector_layers=0)
    with pytest.raises(GraphError, match="Data or an AdaptiveLabelGraph"):
        CrossModalModel(D_V, D_T, torch.zeros(3, 3))
    broken = tiny_graph()
    broken.edge_index = torch.tensor([[0, 9], [1, 0]])
    broken.edge_weight = torch.ones(2)
    with pytest.raises(GraphError, match="outside"):
        CrossModalModel(D_V, D_T, broken)
    with pytest.raises(GcnRetrievalError, match="did you mean 'l2gcn'"):
        CrossModalModel(D_V, D_T, tiny_graph(), encoder="l2gnc")


def test_default_widths_follow_the_method():
    model = CrossModalModel(12, 64, tiny_graph(), encoder_options={"num_layers": 2}, common_dim=D)
    assert (model.image_to_text.hidden_channels, model.image_to_text.out_channels) == (512, 64)
    assert (model.text_to_image.hidden_channels, model.text_to_image.out_channels) == (2048, 12)
    assert model.image_to_text.negative_slope == 0.2 and model.text_to_image.negative_slope == 0.0
    assert model.image_discriminator.hidden_channels == (1024, 256)
    assert model.text_discriminator.hidden_channels == (16, 4)
    assert model.image_projector.in_channels == 12 and model.text_projector.in_channels == 64


def test_dagnn_code_options_drop_batch_norm_and_discriminator_activations():
    model = CrossModalModel(64, 32, tiny_graph(), encoder_options={"num_layers": 2}, common_dim=D,
                            image_discriminator_hidden=None, batch_norm=False, discriminator_act="identity")
    assert model.image_discriminator.hidden_channels == (16, 4)
    parts = [model.image_projector, model.text_projector, model.image_to_text, model.text_to_image,
             model.image_discriminator, model.text_discriminator]
    assert not any(isinstance(m, nn.BatchNorm1d) for part in parts for m in part.modules())
    assert not any(isinstance(m, nn.ReLU) for d in parts[4:] for m in d.modules())
    model.reset_parameters()
    g = torch.Generator().manual_seed(5)
    image, text = torch.randn(N, 64, generator=g), torch.randn(N, 32, generator=g)
    # written out: D(x) = W3 (W2 (W1 x + b1) + b2) + b3, P(x) = ReLU(W x + b)
    d = model.image_discriminator
    expected = image
    for lin in d.lins:
        expected = expected @ lin.weight.T + lin.bias
    out = model(image, text)
    assert torch.allclose(out.image_real_logits, expected, atol=1e-5)
    p = model.image_projector.lins[0]
    assert torch.allclose(out.image_embedding, (image @ p.weight.T + p.bias).clamp(min=0), atol=1e-5)
    with pytest.raises(GcnRetrievalError, match="discriminator_act|act"):
        CrossModalModel(64, 32, tiny_graph(), discriminator_act="tanh")
