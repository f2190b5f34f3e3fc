"""The pairwise losses from float16 / bfloat16 embeddings: ``.half()`` / ``.bfloat16()``
tensors, and float32 tensors under ``torch.autocast`` (embeddings out of a Linear layer,
which autocast really casts), in the fused kernels and the op-by-op reference path.

Each loss is compared with the float64 plain-loop reference evaluated on the *rounded*
embeddings (the half-precision values, upcast exactly), so the input rounding cancels and
what is left is the loss's own arithmetic, which runs in float32:

- values: the loss is a float32 scalar; its error is float32 rounding (eps = 1.2e-7)
  through the exponents (up to gamma = 256 and 1 / tau = 50 here); measured <= 2.5e-7
  (``benchmarks/loss_precision.py``), checked against ``VALUE_TOL``;
- gradients: computed in float32, then cast to the embeddings' dtype; the cast alone
  moves each entry by up to the dtype's unit roundoff u (2^-11 for float16, 2^-8 for
  bfloat16) of itself, so the largest error relative to the largest entry is at most
  u plus the float32 error: ``u + GRAD_TOL32``.

Cosines computed from bfloat16-rounded products instead (what autocast would do) are off
by about 4e-3, which moves the Circle loss at gamma = 16 by about 2e-3 of itself.
"""
from __future__ import annotations

import contextlib
import math

import pytest
import torch
from loss_references import circle, rel_error, soft_contrastive, value_and_grads

from gcnretrieval.losses import CircleSoftLoss, circle_loss, soft_contrastive_loss
from gcnretrieval.losses.pair_kernels import (
    EXP_RANGE,
    HALF_DTYPES,
    circle_from_similarity,
    compute_dtype,
    cosine_similarities,
    soft_contrastive_from_similarity,
)

N, D_IN, D = 10, 12, 8
GAMMAS = (16.0, 64.0, 256.0)  # one exponent shift (4 gamma <= 80), then the masked maxima
TAUS = (0.02, 0.05, 0.1, 0.22)  # row maxima (2 kappa / tau > 80) for 0.02, one shift above
MODES = ("cast", "autocast")
VALUE_TOL = 2e-6
GRAD_TOL32 = 1e-5


def unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2


def labels_for(seed: int, c: int = 5, density: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + seed)
    return (torch.rand(N, c, generator=gen) < density).float()


def half_embeddings(dtype: torch.dtype, mode: str, count: int, seed: int, loss_fn):
    """``count`` (N, D) embeddings in ``dtype`` and ``loss_fn(*embeddings)``.

    ``"cast"``: float32 draws cast with ``.to(dtype)``, leaves that require grad.
    ``"autocast"``: float32 features through float32 Linear layers inside
    ``torch.autocast("cpu", dtype=dtype)``, the loss computed inside the same region.
    Returns ``(loss, embeddings)``.
    """
    gen = torch.Generator().manual_seed(seed)
    if mode == "cast":
        embeddings = [torch.randn(N, D, generator=gen).to(dtype).requires_grad_(True) for _ in range(count)]
        return loss_fn(*embeddings), embeddings
    features = [torch.randn(N, D_IN, generator=gen) for _ in range(count)]
    layers = []
    for _ in range(count):
        layer = torch.nn.Linear(D_IN, D)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(D, D_IN, generator=gen) / math.sqrt(D_IN))
            layer.bias.copy_(0.1 * torch.randn(D, generator=gen))
        layers.append(layer)
    with torch.autocast("cpu", dtype=dtype):
        embeddings = [layer(x) for layer, x in zip(layers, features)]
        assert all(e.dtype == dtype for e in embeddings)  # autocast did cast
        loss = loss_fn(*embeddings)
    return loss, embeddings


def compare(loss, embeddings, reference, *args, **kwargs) -> tuple[float, float]:
    """Relative errors of the value and of the gradients (largest over the embeddings)
    against ``reference(*float64 copies of the rounded embeddings, *args, **kwargs)``."""
    grads = torch.autograd.grad(loss, embeddings)
    assert loss.dtype == torch.float32
    assert all(g.dtype == e.dtype for g, e in zip(grads, embeddings))
    rounded = tuple(e.detach().double() for e in embeddings)
    ref_value, ref_grads = value_and_grads(reference, rounded, *args, **kwargs)
    return rel_error(loss, ref_value), max(rel_error(g, r) for g, r in zip(grads, ref_grads))


def circle_errors(dtype, mode, fused, gamma, reduction, seed=0):
    labels = labels_for(seed)
    loss, embeddings = half_embeddings(
        dtype, mode, 1, seed, lambda x: circle_loss(x, labels, gamma=gamma, reduction=reduction, fused=fused)
    )
    return compare(loss, embeddings, circle, labels.double(), gamma=gamma, reduction=reduction)


def soft_errors(dtype, mode, fused, tau, seed=0):
    labels = labels_for(seed)
    loss, embeddings = half_embeddings(
        dtype, mode, 2, seed, lambda v, t: soft_contrastive_loss(v, t, labels, temperature=tau, fused=fused)
    )
    return compare(loss, embeddings, soft_contrastive, labels.double(), tau=tau)


class _Output:
    def __init__(self, image, text):
        self.image_embedding, self.text_embedding = image, text


def circle_soft_reference(v, t, labels, theta, gamma, tau):
    return theta * (circle(v, labels, gamma=gamma) + circle(t, labels, gamma=gamma)) + (
        1 - theta
    ) * soft_contrastive(v, t, labels, tau=tau)


def circle_soft_errors(dtype, mode, fused, gamma, tau, seed=0):
    labels = labels_for(seed)
    theta = 0.375  # exact in float32: the reference uses the same weight
    module = CircleSoftLoss(theta=theta, gamma=gamma, temperature=tau, fused=fused)
    loss, embeddings = half_embeddings(dtype, mode, 2, seed, lambda v, t: module(_Output(v, t), labels))
    return compare(loss, embeddings, circle_soft_reference, labels.double(), theta, gamma, tau)


def check(errors, dtype):
    value_error, grad_error = errors
    assert value_error < VALUE_TOL
    assert grad_error < unit_roundoff(dtype) + GRAD_TOL32


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_circle_from_half_precision_matches_float64_reference(gamma, reduction, dtype, mode, fused):
    check(circle_errors(dtype, mode, fused, gamma, reduction), dtype)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("tau", TAUS)
def test_soft_contrastive_from_half_precision_matches_float64_reference(tau, dtype, mode, fused):
    check(soft_errors(dtype, mode, fused, tau), dtype)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("gamma,tau", [(16.0, 0.22), (256.0, 0.02)])
def test_circle_soft_from_half_precision_matches_float64_reference(gamma, tau, dtype, mode, fused):
    check(circle_soft_errors(dtype, mode, fused, gamma, tau), dtype)


@pytest.mark.parametrize("fused", [True, False])
def test_float16_circle_at_gamma_16_to_21_is_right(fused):
    # computed in float16, the fused kernel gave 0.0 at gamma 16 and 20 and NaN at 21
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 8, generator=gen).half()
    y = (torch.rand(10, 5, generator=gen) < 0.3).float()
    for gamma in (16.0, 20.0, 21.0):
        value = circle_loss(x, y, gamma=gamma, fused=fused)
        reference = circle(x.double(), y.double(), gamma=gamma)
        assert reference.item() > 30
        assert value.dtype == torch.float32
        assert rel_error(value, reference) < VALUE_TOL


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_similarity_products_stay_float32_under_autocast(dtype):
    gen = torch.Generator().manual_seed(3)
    v, t = torch.randn(N, D, generator=gen), torch.randn(N, D, generator=gen)
    labels = labels_for(3)
    plain = cosine_similarities(v, t, labels)
    with torch.autocast("cpu", dtype=dtype):
        under = cosine_similarities(v, t, labels)
    for a, b in zip(under, plain):
        assert a.dtype == torch.float32
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_kernels_given_half_matrices_compute_in_float32(dtype):
    gen = torch.Generator().manual_seed(4)
    v, t = torch.randn(N, D, generator=gen), torch.randn(N, D, generator=gen)
    pairs = cosine_similarities(v.to(dtype).float(), t.to(dtype).float(), labels_for(4))
    half = [m.to(dtype) for m in pairs]  # the cosines rounded; the 0/1 masks are exact
    exact = [m.float() for m in half]
    circle_half = circle_from_similarity(half[0], half[4], half[5], 0.25, 64.0, "global")
    circle_exact = circle_from_similarity(exact[0], exact[4], exact[5], 0.25, 64.0, "global")
    soft_half = soft_contrastive_from_similarity(half[2], half[0], half[1], half[3], 0.02, 0.14, 1.06)
    soft_exact = soft_contrastive_from_similarity(exact[2], exact[0], exact[1], exact[3], 0.02, 0.14, 1.06)
    assert circle_half.dtype == soft_half.dtype == torch.float32
    assert torch.equal(circle_half, circle_exact)
    assert torch.equal(soft_half, soft_exact)
    with torch.autocast("cpu", dtype=dtype):
        assert torch.equal(circle_from_similarity(exact[0], exact[4], exact[5], 0.25, 64.0, "global"), circle_exact)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_fused_backward_inside_autocast_equals_backward_outside(dtype):
    module = CircleSoftLoss(theta=0.375, gamma=64.0, temperature=0.05)
    labels = labels_for(5)
    grads = []
    for inside in (True, False):
        loss, embeddings = half_embeddings(dtype, "autocast", 2, 5, lambda v, t: module(_Output(v, t), labels))
        with torch.autocast("cpu", dtype=dtype) if inside else contextlib.nullcontext():
            grads.append(torch.autograd.grad(loss, embeddings))
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_the_exponent_window_fits_every_compute_dtype():
    # the kernels never compute in a half type; e^-EXP_RANGE and the 1 / sum coefficients
    # up to e^EXP_RANGE stay normal, with room to spare, in float32 and float64
    assert {compute_dtype(d) for d in HALF_DTYPES} == {torch.float32}
    for dtype in (torch.float32, torch.float64):
        info = torch.finfo(dtype)
        assert math.exp(-EXP_RANGE) > 1000 * info.tiny
        assert math.exp(EXP_RANGE) < info.max / 1000
