"""Pairwise likelihood loss (DSCMR / ALGCN common-space term) against a plain loop."""
from __future__ import annotations

import math

import pytest
import torch

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import PairwiseLikelihoodLoss, pairwise_likelihood_loss


def reference(image, text, labels, similarity="count", scale=0.5, eps=1e-6):
    n, d = image.shape
    c = labels.shape[1]
    rows = {"v": [[float(image[i, k]) for k in range(d)] for i in range(n)],
            "t": [[float(text[i, k]) for k in range(d)] for i in range(n)]}
    total = 0.0
    for a_name, b_name in (("v", "v"), ("v", "t"), ("t", "t")):
        a, b = rows[a_name], rows[b_name]
        term = 0.0
        for i in range(n):
            for j in range(n):
                dot = sum(a[i][k] * b[j][k] for k in range(d))
                norm_a = math.sqrt(sum(x * x for x in a[i]))
                norm_b = math.sqrt(sum(x * x for x in b[j]))
                theta = scale * dot / max(norm_a * norm_b, eps)
                shared = sum(float(labels[i, m]) * float(labels[j, m]) for m in range(c))
                s = shared if similarity == "count" else float(shared > 0)
                term += math.log(1.0 + math.exp(theta)) - s * theta
        total += term / (n * n)
    return total


def random_batch(n=6, d=4, c=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(n, d, generator=gen, dtype=torch.float64).relu().to(dtype)
    text = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    labels = (torch.rand(n, c, generator=gen) < 0.5).to(dtype)
    labels[:, 0] = 1  # some pairs share two or more labels
    return image, text, labels


@pytest.mark.parametrize("similarity", ["count", "binary"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference_float64(seed, similarity):
    image, text, labels = random_batch(seed=seed)
    value = pairwise_likelihood_loss(image, text, labels, similarity=similarity).item()
    assert value == pytest.approx(reference(image, text, labels, similarity), rel=1e-12)


@pytest.mark.parametrize("similarity", ["count", "binary"])
def test_matches_loop_reference_float32(similarity):
    image, text, labels = random_batch(seed=3, dtype=torch.float32)
    value = pairwise_likelihood_loss(image, text, labels, similarity=similarity)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(image, text, labels, similarity), rel=1e-5)


def test_count_and_binary_differ_when_pairs_share_several_labels():
    image, text, labels = random_batch(seed=4)
    assert (labels @ labels.T).max() > 1
    count = pairwise_likelihood_loss(image, text, labels, similarity="count").item()
    binary = pairwise_likelihood_loss(image, text, labels, similarity="binary").item()
    assert count != pytest.approx(binary)


def test_scale_changes_the_value_as_the_formula_says():
    image, text, labels = random_batch(seed=5)
    value = pairwise_likelihood_loss(image, text, labels, scale=1.0).item()
    assert value == pytest.approx(reference(image, text, labels, scale=1.0), rel=1e-12)


def test_gradient_matches_the_loop_reference_autograd():
    image, text, labels = random_batch(seed=6)
    image = image + 0.1  # no all-zero row: the norm is differentiable everywhere here
    image.requires_grad_(True)
    text.requires_grad_(True)
    pairwise_likelihood_loss(image, text, labels).backward()
    ours = (image.grad.clone(), text.grad.clone())
    assert torch.autograd.gradcheck(lambda a, b: pairwise_likelihood_loss(a, b, labels),
                                    (image.detach().clone().requires_grad_(True),
                                     text.detach().clone().requires_grad_(True)))
    # finite differences of the plain loop (central, step 1e-6) for a few coordinates
    for tensor, grad in ((image, ours[0]), (text, ours[1])):
        for i, k in ((0, 0), (2, 1), (5, 3)):
            plus, minus = tensor.detach().clone(), tensor.detach().clone()
            plus[i, k] += 1e-6
            minus[i, k] -= 1e-6
            args_p = (plus, text.detach()) if tensor is image else (image.detach(), plus)
            args_m = (minus, text.detach()) if tensor is image else (image.detach(), minus)
            numeric = (reference(*args_p, labels) - reference(*args_m, labels)) / 2e-6
            assert float(grad[i, k]) == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_zero_rows_give_finite_values_and_gradients():
    image, text, labels = random_batch(seed=7)
    image = image.clone()
    image[1] = 0.0
    image.requires_grad_(True)
    loss = pairwise_likelihood_loss(image, text, labels)
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(image.grad).all()
    assert loss.item() == pytest.approx(reference(image.detach(), text, labels), rel=1e-12)


def test_large_scale_does_not_overflow():
    image, text, labels = random_batch(seed=8)
    assert math.isfinite(pairwise_likelihood_loss(image, text, labels, scale=1e4).item())


def test_module_reads_the_embeddings():
    image, text, labels = random_batch(seed=9)
    output = type("Output", (), {"image_embedding": image, "text_embedding": text})()
    term = PairwiseLikelihoodLoss(similarity="binary")
    assert term(output, labels).item() == pytest.approx(reference(image, text, labels, "binary"), rel=1e-12)
    assert "binary" in repr(term)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="differ in shape"):
        pairwise_likelihood_loss(image, text[:, :2], labels)
    with pytest.raises(DataError, match="labels"):
        pairwise_likelihood_loss(image, text, labels[:3])
    with pytest.raises(ConfigError, match="similarity"):
        pairwise_likelihood_loss(image, text, labels, similarity="cosine")
    with pytest.raises(ConfigError, match="scale"):
        PairwiseLikelihoodLoss(scale=0.0)


def test_half_precision_and_autocast_compute_in_float32():
    image, text, labels = random_batch(seed=10, dtype=torch.float32)
    ref = reference(image, text, labels)
    value = pairwise_likelihood_loss(image.bfloat16(), text.bfloat16(), labels)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(image.bfloat16().float(), text.bfloat16().float(), labels),
                                         rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = pairwise_likelihood_loss(image, text, labels)
    assert value.dtype == torch.float32 and value.item() == pytest.approx(ref, rel=1e-5)
