"""DCCA (Andrew et al., ICML 2013): the model's shapes and buffers, its objective, a short training."""
from __future__ import annotations

import math

import torch

from gcnretrieval.methods.dcca import DCCAModel, DCCAObjective, DCCAOutput

from test_losses_canonical_correlation import reference


def pairs(n=64, dv=12, dt=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=g)
    image = torch.cat([torch.tanh(z), torch.randn(n, dv - 3, generator=g)], 1)
    text = torch.cat([z ** 3, torch.randn(n, dt - 3, generator=g)], 1)
    return image, text


def small_model(**kwargs):
    torch.manual_seed(0)
    return DCCAModel(12, 9, **{"hidden_channels": 16, "num_layers": 2, "out_channels": 4, **kwargs})


def test_shapes_and_embeddings():
    image, text = pairs()
    model = small_model(top_k=3)
    output = model(image, text)
    assert output.image_embedding.shape == (64, 4) and output.text_embedding.shape == (64, 4)
    model.eval()
    assert model.embed_image(image).shape == (64, 3) and model.embed_text(text).shape == (64, 3)


def test_statistics_update_only_in_training_mode():
    image, text = pairs()
    model = small_model()
    model.eval()
    model(image, text)
    assert int(model.cca.num_batches_tracked) == 0
    model.train()
    model(image, text)
    assert int(model.cca.num_batches_tracked) == 1
    torch.testing.assert_close(model.cca.cov11, 0.9 * torch.eye(4) + 0.1 * torch.cov(
        model.image_net(image).detach().T))


def test_embeddings_are_the_canonical_variates_of_a_full_batch():
    # momentum 1 and one full batch: the running statistics are the batch's, so the embeddings are
    # uncorrelated within each view, with unit variance up to the ridge, and paired across views
    image, text = pairs(n=200)
    model = small_model(momentum=1.0, ridge=1e-9).double()
    model.eval()  # BatchNorm with its running statistics, as at retrieval time
    model.cca.update(model.image_net(image.double()), model.text_net(text.double()))
    a, b = model.embed_image(image.double()), model.embed_text(text.double())
    n = a.shape[0] - 1
    _, _, correlations = model.cca.directions()
    torch.testing.assert_close(a.T @ a / n, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(b.T @ b / n, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(a.T @ b / n, torch.diag(correlations), atol=1e-6, rtol=0)


def test_checkpoint_holds_everything_retrieval_needs():
    image, text = pairs()
    model = small_model()
    model(image, text)
    model.eval()
    copy = small_model()
    torch.manual_seed(5)
    copy.reset_parameters()
    copy.load_state_dict(model.state_dict())
    copy.eval()
    torch.testing.assert_close(copy.embed_image(image), model.embed_image(image))
    torch.testing.assert_close(copy.embed_text(text), model.embed_text(text))


def test_objective_is_the_negative_total_correlation():
    image, text = pairs()
    output = small_model()(image, text)
    total, parts = DCCAObjective(r1=1e-3, r2=2e-3)(output, torch.zeros(64, 2))
    want, _, _ = reference(output.image_embedding.detach().double(), output.text_embedding.detach().double(),
                           1e-3, 2e-3)
    assert math.isclose(float(parts["correlation"]), want, rel_tol=1e-5)
    assert math.isclose(float(total.detach()), -want, rel_tol=1e-5)
    assert set(parts) == set(DCCAObjective.parts)


def test_training_raises_the_correlation():
    image, text = pairs(n=256)
    model = small_model()
    objective = DCCAObjective()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        total, parts = objective(model(image, text), torch.zeros(256, 2))
        first = float(parts["correlation"]) if first is None else first
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    assert float(parts["correlation"]) > first + 0.5
    assert isinstance(model(image, text), DCCAOutput)


def test_the_method_trains_end_to_end_on_a_tiny_recipe(tmp_path):
    import gcnretrieval
    from gcnretrieval.methods import apply_method

    recipe = {"run": {"name": "dcca", "seed": 0},
              "data": {"source": "synthetic", "synthetic": {"num_train": 120, "num_test": 30, "num_labels": 5,
                                                            "image_dim": 16, "text_dim": 12}},
              "graph": {"node_features": "random"}, "encoder": {"name": "gcn"},
              "train": {"device": "cpu"}}
    raw = apply_method(recipe, "dcca")
    assert "graph" not in raw and raw["model"]["name"] == "dcca" and raw["train"]["batch_size"] == 512
    result = gcnretrieval.run(raw, {"train.epochs": 2, "train.batch_size": 50, "model.hidden_channels": 16,
                                    "model.out_channels": 4},
                              out=tmp_path / "run", progress=False)
    assert 0.0 < result.test["avg_map"] <= 1.0
    assert [sorted(k for k in row if k.startswith("loss_")) for row in result.history] == [
        ["loss_correlation", "loss_total"]] * 2
