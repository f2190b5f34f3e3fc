"""Circle loss against a plain-loop reference written from the method (float64)."""
from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning.losses import CircleLoss as PMLCircleLoss

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import CircleLoss, circle_loss

M, GAMMA = 0.25, 16.0


def random_batch(n: int, d: int = 8, c: int = 5, density: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = (torch.rand(n, c, generator=gen) < density).double()
    return features, labels


def _lse(terms):
    top = max(float(t.detach()) for t in terms)
    return top + torch.log(sum(torch.exp(t - top) for t in terms))


def _softplus(z):
    return torch.clamp(z, min=0) + torch.log1p(torch.exp(-torch.abs(z)))


def _pair_term(s, shares, m, gamma):
    if shares:
        alpha_p = torch.clamp(1 + m - s.detach(), min=0)
        return "p", -gamma * alpha_p * (s - (1 - m))
    alpha_n = torch.clamp(s.detach() + m, min=0)
    return "n", gamma * alpha_n * (s - m)


def _cos(x, i, j):
    xi, xj = x[i], x[j]
    dot = sum(xi[k] * xj[k] for k in range(len(xi)))
    return dot / (torch.sqrt(sum(v * v for v in xi)) * torch.sqrt(sum(v * v for v in xj)))


def _shares(y, i, j):
    return sum(float(y[i, c]) * float(y[j, c]) for c in range(y.shape[1])) > 0


def reference_global(x, y, m=M, gamma=GAMMA):
    """One term over all pairs i < j (METHOD §4)."""
    pos, neg = [], []
    n = x.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            kind, term = _pair_term(_cos(x, i, j), _shares(y, i, j), m, gamma)
            (pos if kind == "p" else neg).append(term)
    if not pos or not neg:
        return x.sum() * 0.0
    return _softplus(_lse(neg) + _lse(pos))


def reference_per_anchor(x, y, m=M, gamma=GAMMA):
    """Per anchor over j != i; mean over anchors with a positive and a negative."""
    losses = []
    n = x.shape[0]
    for i in range(n):
        pos, neg = [], []
        for j in range(n):
            if j == i:
                continue
            kind, term = _pair_term(_cos(x, i, j), _shares(y, i, j), m, gamma)
            (pos if kind == "p" else neg).append(term)
        if pos and neg:
            losses.append(_softplus(_lse(neg) + _lse(pos)))
    if not losses:
        return x.sum() * 0.0
    return sum(losses) / len(losses)


def _value_and_grad(fn, x, y, **kwargs):
    x = x.clone().requires_grad_(True)
    loss = fn(x, y, **kwargs)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def _rel(a, b):
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m,gamma", [(0.25, 16.0), (0.4, 80.0), (0.0, 2.0)])
def test_global_matches_loop_reference_values_and_gradients(seed, m, gamma):
    x, y = random_batch(10, seed=seed)
    value, grad = _value_and_grad(circle_loss, x, y, m=m, gamma=gamma)
    ref_value, ref_grad = _value_and_grad(reference_global, x, y, m=m, gamma=gamma)
    assert ref_value.item() > 0
    assert _rel(value, ref_value) < 1e-6
    assert _rel(grad, ref_grad) < 1e-6  # includes the stop-gradient on alpha


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m,gamma", [(0.25, 16.0), (0.4, 80.0)])
def test_per_anchor_matches_loop_reference_values_and_gradients(seed, m, gamma):
    x, y = random_batch(10, density=0.2, seed=seed)
    value, grad = _value_and_grad(circle_loss, x, y, m=m, gamma=gamma, reduction="per_anchor")
    ref_value, ref_grad = _value_and_grad(reference_per_anchor, x, y, m=m, gamma=gamma)
    assert ref_value.item() > 0
    assert _rel(value, ref_value) < 1e-6
    assert _rel(grad, ref_grad) < 1e-6


def test_per_anchor_skips_anchors_without_a_positive():
    x, y = random_batch(6, c=4, seed=5)
    y = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).double()
    value = circle_loss(x, y, reduction="per_anchor")
    ref = reference_per_anchor(x, y)
    assert _rel(value.detach(), ref.detach()) < 1e-6


def _all_pairs_tuple(labels):
    positive = (labels @ labels.t()) > 0
    off_diagonal = ~torch.eye(labels.shape[0], dtype=torch.bool)
    a1, p = torch.where(positive & off_diagonal)
    a2, n = torch.where(~positive & off_diagonal)
    return a1, p, a2, n


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_per_anchor_equals_pytorch_metric_learning(seed, dtype):
    x, y = random_batch(16, d=12, c=6, density=0.25, seed=seed)
    x = x.to(dtype)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    ours_x = x.clone().requires_grad_(True)
    pml_x = x.clone().requires_grad_(True)
    ours = circle_loss(ours_x, y, m=0.25, gamma=16.0, reduction="per_anchor")
    theirs = PMLCircleLoss(m=0.25, gamma=16)(pml_x, indices_tuple=_all_pairs_tuple(y))
    ours.backward()
    theirs.backward()
    assert theirs.item() > 0
    assert _rel(ours.detach(), theirs.detach()) < tol
    assert _rel(ours_x.grad, pml_x.grad) < tol


def test_no_negative_pairs_gives_zero_with_zero_gradient():
    x, _ = random_batch(5)
    y = torch.ones(5, 3, dtype=torch.float64)
    for reduction in ("global", "per_anchor"):
        xg = x.clone().requires_grad_(True)
        loss = circle_loss(xg, y, reduction=reduction)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(xg.grad, torch.zeros_like(x))


def test_no_positive_pairs_gives_zero_with_zero_gradient():
    x, _ = random_batch(4)
    y = torch.eye(4, dtype=torch.float64)
    for reduction in ("global", "per_anchor"):
        xg = x.clone().requires_grad_(True)
        loss = circle_loss(xg, y, reduction=reduction)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(xg.grad, torch.zeros_like(x))


def test_batch_of_one_is_zero():
    x = torch.randn(1, 4, requires_grad=True)
    for reduction in ("global", "per_anchor"):
        loss = circle_loss(x, torch.ones(1, 2), reduction=reduction)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
@pytest.mark.parametrize("norm", [1e4, 1.0, 1e-6])
def test_finite_at_gamma_256_and_extreme_norms(reduction, norm):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(12, 16, generator=gen)
    x = x / x.norm(dim=1, keepdim=True) * norm
    x[1] = x[0]  # a perfectly similar pair (cos = 1)
    x[2] = -x[0]  # and a perfectly dissimilar one
    y = (torch.rand(12, 4, generator=gen) < 0.3).float()
    y[0] = y[1] = torch.tensor([1.0, 0, 0, 0])
    y[2] = torch.tensor([1.0, 0, 0, 0])  # positive yet opposite: the largest exponent
    x.requires_grad_(True)
    loss = circle_loss(x, y, gamma=256.0, reduction=reduction)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 100  # a large but finite loss
    assert torch.isfinite(x.grad).all()


def test_module_sums_both_modalities_and_accepts_a_tensor():
    x, y = random_batch(8, seed=4)
    t, _ = random_batch(8, seed=9)
    output = type("Output", (), {"image_embedding": x, "text_embedding": t})()
    module = CircleLoss(m=0.3, gamma=20.0)
    expected = reference_global(x, y, 0.3, 20.0) + reference_global(t, y, 0.3, 20.0)
    assert _rel(module(output, y), expected) < 1e-6
    assert _rel(module(x, y), reference_global(x, y, 0.3, 20.0)) < 1e-6


def test_bad_inputs_raise_one_clear_error():
    x, y = random_batch(5)
    with pytest.raises(DataError, match="rows"):
        circle_loss(x, y[:4])
    with pytest.raises(DataError, match="0 or 1"):
        circle_loss(x, y * 2)
    with pytest.raises(DataError, match="2-D"):
        circle_loss(x, torch.arange(5))
    with pytest.raises(ConfigError, match="gamma"):
        circle_loss(x, y, gamma=0.0)
    with pytest.raises(ConfigError, match=r"^m must be in \[0, 1\)"):
        circle_loss(x, y, m=1.0)
    with pytest.raises(ConfigError, match=r"^m must be in \[0, 1\)"):
        CircleLoss(m=-0.1)
    with pytest.raises(ConfigError, match="did you mean 'per_anchor'"):
        circle_loss(x, y, reduction="per-anchor")
    assert math.isfinite(circle_loss(x, y.bool()).item())  # boolean labels are fine
