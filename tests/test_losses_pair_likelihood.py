"""Pairwise likelihood loss (DAGNN's common-space term) against a plain float64 loop."""
from __future__ import annotations

import math

import pytest
import torch

from gcnretrieval.errors import DataError
from gcnretrieval.losses import PairLikelihoodLoss, pair_likelihood_loss


def reference(image, text, labels, similarity="count"):
    """sum over (vv, vt, tt) of mean_ij [log(1 + exp(G_ij)) - S_ij G_ij], G = cos / 2, S = shared labels."""
    image, text, labels = image.tolist(), text.tolist(), labels.tolist()
    n = len(labels)

    def dot(a, b):
        return sum(p * q for p, q in zip(a, b))

    total = 0.0
    for a, b in ((image, image), (image, text), (text, text)):
        term = 0.0
        for i in range(n):
            for j in range(n):
                g = dot(a[i], b[j]) / max(math.sqrt(dot(a[i], a[i]) * dot(b[j], b[j])), 1e-6) / 2.0
                s = dot(labels[i], labels[j])
                if similarity == "binary":
                    s = min(s, 1.0)
                term += math.log(1.0 + math.exp(g)) - s * g
        total += term / (n * n)
    return total


def random_batch(n=6, d=4, c=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(n, d, generator=gen, dtype=torch.float64)
    text = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = (torch.rand(n, c, generator=gen) < 0.5).double()
    labels[0] = 1.0  # a row sharing several labels with the others: counts above 1
    return image.to(dtype), text.to(dtype), labels.to(dtype)


@pytest.mark.parametrize("similarity", ["count", "binary"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_value_and_gradient_match_the_loop_reference(similarity, dtype, seed):
    image, text, labels = random_batch(seed=seed, dtype=dtype)
    image.requires_grad_(True)
    text.requires_grad_(True)
    value = pair_likelihood_loss(image, text, labels, similarity)
    assert value.dtype == dtype
    expected = reference(image.detach().double(), text.detach().double(), labels, similarity)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert abs(value.item() - expected) <= tol * max(1.0, abs(expected))
    value.backward()
    # the loop reference differentiated by autograd, in float64
    image64 = image.detach().double().requires_grad_(True)
    text64 = text.detach().double().requires_grad_(True)
    n = labels.size(0)
    total = image64.new_zeros(())
    for a, b in ((image64, image64), (image64, text64), (text64, text64)):
        for i in range(n):
            for j in range(n):
                g = (a[i] @ b[j]) / torch.clamp(a[i].norm() * b[j].norm(), min=1e-6) / 2.0
                s = float(labels[i].double() @ labels[j].double())
                s = min(s, 1.0) if similarity == "binary" else s
                total = total + (torch.log1p(torch.exp(g)) - s * g) / (n * n)
    total.backward()
    gtol = 1e-10 if dtype == torch.float64 else 1e-5
    assert torch.allclose(image.grad.double(), image64.grad, atol=gtol)
    assert torch.allclose(text.grad.double(), text64.grad, atol=gtol)


def test_counts_and_binary_differ_only_when_rows_share_several_labels():
    image, text, labels = random_batch(seed=3)
    assert (labels @ labels.t()).max() > 1
    assert pair_likelihood_loss(image, text, labels, "count") != pair_likelihood_loss(image, text, labels, "binary")
    single = torch.eye(6, 5, dtype=torch.float64)
    single[5, 0] = 1.0
    assert pair_likelihood_loss(image, text, single, "count") == pair_likelihood_loss(image, text, single, "binary")


def test_zero_embedding_rows_stay_finite():
    image, text, labels = random_batch(seed=4)
    image = image.clone()
    image[2] = 0.0
    image.requires_grad_(True)
    value = pair_likelihood_loss(image, text, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(image.grad).all()


def test_module_reads_the_embeddings():
    image, text, labels = random_batch(seed=5)
    output = type("Output", (), {"image_embedding": image, "text_embedding": text})()
    assert PairLikelihoodLoss("binary")(output, labels).item() == pytest.approx(
        reference(image, text, labels, "binary"), rel=1e-12)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch(seed=6)
    with pytest.raises(DataError, match="differ in shape"):
        pair_likelihood_loss(image, text[:, :3], labels)
    with pytest.raises(DataError, match="0 or 1"):
        pair_likelihood_loss(image, text, labels * 2)
    with pytest.raises(Exception, match="similarity"):
        PairLikelihoodLoss("jaccard")
