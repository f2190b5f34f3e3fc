"""Circle loss, fused kernel and op-by-op reference path, against a plain-loop reference
written from the method (float64)."""
from __future__ import annotations

import math

import pytest
import torch
from loss_references import circle_global as reference_global
from loss_references import circle_per_anchor as reference_per_anchor
from pytorch_metric_learning.losses import CircleLoss as PMLCircleLoss

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import CircleLoss, circle_loss

#: float64 against the loop reference: the kernels' single exponent shift (at most
#: 4 gamma = 1,024 here) costs up to a few units of 1e-16 * shift; measured <= 3e-15.
TOL64 = 1e-13


def random_batch(n: int, d: int = 8, c: int = 5, density: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = (torch.rand(n, c, generator=gen) < density).double()
    return features, labels


def _value_and_grad(fn, x, y, **kwargs):
    x = x.clone().requires_grad_(True)
    loss = fn(x, y, **kwargs)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def _rel(a, b):
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)


# gamma 2 and 16 take the kernel's one exponent shift (4 gamma <= 80), 64, 80 and 256 its masked maxima
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m,gamma", [(0.25, 16.0), (0.4, 80.0), (0.0, 2.0), (0.25, 64.0), (0.25, 256.0)])
def test_global_matches_loop_reference_values_and_gradients(seed, m, gamma, fused):
    x, y = random_batch(10, seed=seed)
    value, grad = _value_and_grad(circle_loss, x, y, m=m, gamma=gamma, fused=fused)
    ref_value, ref_grad = _value_and_grad(reference_global, x, y, m=m, gamma=gamma)
    assert ref_value.item() > 0
    assert _rel(value, ref_value) < TOL64
    assert _rel(grad, ref_grad) < TOL64  # includes the stop-gradient on alpha


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m,gamma", [(0.25, 16.0), (0.4, 80.0), (0.25, 64.0), (0.25, 256.0)])
def test_per_anchor_matches_loop_reference_values_and_gradients(seed, m, gamma, fused):
    x, y = random_batch(10, density=0.2, seed=seed)
    value, grad = _value_and_grad(circle_loss, x, y, m=m, gamma=gamma, reduction="per_anchor", fused=fused)
    ref_value, ref_grad = _value_and_grad(reference_per_anchor, x, y, m=m, gamma=gamma)
    assert ref_value.item() > 0
    assert _rel(value, ref_value) < TOL64
    assert _rel(grad, ref_grad) < TOL64


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
def test_softplus_is_exact_above_twenty(reduction, fused):
    # pairs (0, 1) positive with s = 0, (0, 2) negative with s = 1, (1, 2) negative with s = 0:
    # exponents 0.9375 gamma, 0.9375 gamma and -0.0625 gamma, so the softplus argument of the
    # global term and of anchor 0 is 1.875 gamma (+ 1e-5) = 20.5, where F.softplus returns its
    # argument itself: 1.2e-9 too low, with a gradient of 1 instead of sigmoid(20.5).
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    gamma = 20.5 / 1.875
    value, grad = _value_and_grad(circle_loss, x, y, gamma=gamma, reduction=reduction, fused=fused)
    reference = reference_global if reduction == "global" else reference_per_anchor
    ref_value, ref_grad = _value_and_grad(reference, x, y, gamma=gamma)
    assert _rel(value, ref_value) < TOL64
    assert _rel(grad, ref_grad) < TOL64


@pytest.mark.parametrize("fused", [True, False])
def test_per_anchor_skips_anchors_without_a_positive(fused):
    x, y = random_batch(6, c=4, seed=5)
    y = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).double()
    value = circle_loss(x, y, reduction="per_anchor", fused=fused)
    ref = reference_per_anchor(x, y)
    assert _rel(value.detach(), ref.detach()) < TOL64


def _all_pairs_tuple(labels):
    positive = (labels @ labels.t()) > 0
    off_diagonal = ~torch.eye(labels.shape[0], dtype=torch.bool)
    a1, p = torch.where(positive & off_diagonal)
    a2, n = torch.where(~positive & off_diagonal)
    return a1, p, a2, n


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_per_anchor_equals_pytorch_metric_learning(seed, dtype, fused):
    x, y = random_batch(16, d=12, c=6, density=0.25, seed=seed)
    x = x.to(dtype)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    ours_x = x.clone().requires_grad_(True)
    pml_x = x.clone().requires_grad_(True)
    ours = circle_loss(ours_x, y, m=0.25, gamma=16.0, reduction="per_anchor", fused=fused)
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


@pytest.mark.parametrize("fused", [True, False])
def test_module_sums_both_modalities_and_accepts_a_tensor(fused):
    x, y = random_batch(8, seed=4)
    t, _ = random_batch(8, seed=9)
    output = type("Output", (), {"image_embedding": x, "text_embedding": t})()
    module = CircleLoss(m=0.3, gamma=20.0, fused=fused)
    expected = reference_global(x, y, 0.3, 20.0) + reference_global(t, y, 0.3, 20.0)
    assert _rel(module(output, y), expected) < TOL64
    assert _rel(module(x, y), reference_global(x, y, 0.3, 20.0)) < TOL64


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
