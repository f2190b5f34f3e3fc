"""The fused pairwise kernels: both exponent-shift paths, exact gradients, the shared path,
against the plain-loop references and the op-by-op reference path."""
from __future__ import annotations

import pytest
import torch
from loss_references import circle as reference_circle
from loss_references import rel_error, value_and_grads
from loss_references import soft_contrastive as reference_soft

from gcnretrieval.losses import CircleLoss, CircleSoftLoss, SoftContrastiveLoss, circle_loss, soft_contrastive_loss
from gcnretrieval.losses.pair_kernels import (
    EXP_RANGE,
    cosine_similarities,
    label_overlap,
    pair_masks,
    soft_contrastive_from_similarity,
    symmetric_gram,
)
from gcnretrieval.models.cross_modal import _all_finite


def batch(n: int = 9, d: int = 5, c: int = 4, seed: int = 0, density: float = 0.3):
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(n, d, generator=gen, dtype=torch.float64)
    txt = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = (torch.rand(n, c, generator=gen) < density).double()
    return img, txt, labels


def test_symmetric_gram_gradient_is_exact():
    unit = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(symmetric_gram, (unit,))
    assert torch.equal(symmetric_gram(unit), unit @ unit.t())


def test_pair_masks_split_the_off_diagonal_pairs():
    labels = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=torch.float64)
    overlap = label_overlap(labels, labels, torch.float64)
    positive, negative = pair_masks(overlap)
    expected_positive = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float64)
    assert torch.equal(positive, expected_positive)
    off_diagonal = 1.0 - torch.eye(4, dtype=torch.float64)
    assert torch.equal(positive + negative, off_diagonal)


@pytest.mark.parametrize("tau", [0.22, 0.02])  # one shift for all exponents; per-row shifts
def test_soft_kernel_gradient_is_exact(tau):
    assert (2 * 1.06 / tau <= EXP_RANGE) == (tau == 0.22)
    img, txt, labels = batch(seed=3)
    pairs = cosine_similarities(img, txt, labels)
    inputs = tuple(m.detach().clone().requires_grad_(True) for m in pairs[:3])

    def loss(vt, vv, tt):
        return soft_contrastive_from_similarity(vt, vv, tt, pairs.overlap, tau, 0.3, 1.06)

    # the image-text block is any matrix; the intra blocks any matrices too (rows are read)
    assert torch.autograd.gradcheck(lambda vt, vv, tt: loss(vt, vv, tt), (inputs[1], inputs[0], inputs[2]))


class _Output:
    def __init__(self, image, text):
        self.image_embedding, self.text_embedding = image, text


def _circle_soft_reference(v, t, labels, theta, gamma, reduction, tau):
    circle = reference_circle(v, labels, gamma=gamma, reduction=reduction)
    circle = circle + reference_circle(t, labels, gamma=gamma, reduction=reduction)
    return theta * circle + (1 - theta) * reference_soft(v, t, labels, tau=tau)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
@pytest.mark.parametrize("gamma,tau", [(16.0, 0.22), (64.0, 0.05), (256.0, 0.02)])  # shifts, then maxima
def test_circle_soft_matches_loop_references(gamma, tau, reduction, fused):
    img, txt, labels = batch(seed=5)
    theta = 0.375  # exact in float32, where lambda_raw is kept
    module = CircleSoftLoss(theta=theta, gamma=gamma, reduction=reduction, temperature=tau, fused=fused).double()

    def loss(v, t):
        return module(_Output(v, t), labels)

    value, grads = value_and_grads(loss, (img, txt))
    ref, ref_grads = value_and_grads(_circle_soft_reference, (img, txt), labels, theta, gamma, reduction, tau)
    assert ref.item() > 0
    assert rel_error(value, ref) < 1e-12
    for grad, ref_grad in zip(grads, ref_grads):
        assert rel_error(grad, ref_grad) < 1e-12
    parts = module.components(_Output(img, txt), labels)
    assert rel_error(parts["circle"], reference_circle(img, labels, gamma=gamma, reduction=reduction)
                     + reference_circle(txt, labels, gamma=gamma, reduction=reduction)) < 1e-12
    assert rel_error(parts["soft"], reference_soft(img, txt, labels, tau=tau)) < 1e-12


def _large_batch(dtype, seed, n=64, d=16, c=8, density=0.15):
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(n, d, generator=gen, dtype=dtype)
    txt = torch.randn(n, d, generator=gen, dtype=dtype)
    labels = (torch.rand(n, c, generator=gen) < density).to(dtype)
    labels[:3] = 0.0  # rows without any label
    return img, txt, labels


#: fused against op by op: float64 within rounding (measured <= 3.2e-14 at gamma 256),
#: float32 within float32 rounding through the exponents (measured <= 4.6e-6)
PATH_TOLERANCES = {torch.float64: (1e-12, 1e-12), torch.float32: (1e-5, 5e-5)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
@pytest.mark.parametrize("gamma", [16.0, 64.0, 256.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_circle_equals_op_by_op(seed, gamma, reduction, dtype):
    img, _, labels = _large_batch(dtype, seed)
    value_tol, grad_tol = PATH_TOLERANCES[dtype]
    fused = value_and_grads(circle_loss, (img,), labels, gamma=gamma, reduction=reduction)
    plain = value_and_grads(circle_loss, (img,), labels, gamma=gamma, reduction=reduction, fused=False)
    assert plain[0].item() > 0
    assert rel_error(fused[0], plain[0]) < value_tol
    assert rel_error(fused[1][0], plain[1][0]) < grad_tol


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("tau", [0.02, 0.05, 0.1, 0.22])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_soft_contrastive_equals_op_by_op(seed, tau, dtype):
    img, txt, labels = _large_batch(dtype, seed)
    value_tol, grad_tol = PATH_TOLERANCES[dtype]
    fused = value_and_grads(soft_contrastive_loss, (img, txt), labels, temperature=tau, intra_weight=0.3)
    plain = value_and_grads(soft_contrastive_loss, (img, txt), labels, temperature=tau, intra_weight=0.3, fused=False)
    assert rel_error(fused[0], plain[0]) < value_tol
    for a, b in zip(fused[1], plain[1]):
        assert rel_error(a, b) < grad_tol


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
@pytest.mark.parametrize("gamma,tau", [(16.0, 0.22), (256.0, 0.02)])
def test_fused_circle_soft_equals_op_by_op(gamma, tau, reduction, dtype):
    img, txt, labels = _large_batch(dtype, 2)
    value_tol, grad_tol = PATH_TOLERANCES[dtype]
    results = []
    for fused in (True, False):
        module = CircleSoftLoss(theta=0.375, gamma=gamma, reduction=reduction, temperature=tau, fused=fused).to(dtype)
        v, t = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
        parts = module.components(_Output(v, t), labels)
        grads = torch.autograd.grad(parts["circle_soft"], (v, t, module.lambda_raw))
        results.append((parts, grads))
    (fused_parts, fused_grads), (plain_parts, plain_grads) = results
    for name in ("circle", "soft", "circle_soft"):
        assert rel_error(fused_parts[name], plain_parts[name]) < value_tol
    for a, b in zip(fused_grads, plain_grads):  # lambda_raw's gradient is L_cir - L_soft
        assert rel_error(a, b) < grad_tol


@pytest.mark.parametrize("fused", [True, False])
def test_from_similarities_follows_the_module_path(fused):
    img, txt, labels = batch(seed=11)
    pairs = cosine_similarities(img, txt, labels)
    circle, soft = CircleLoss(gamma=64.0, fused=fused), SoftContrastiveLoss(temperature=0.05, fused=fused)
    output = _Output(img, txt)
    assert rel_error(circle.from_similarities(pairs), circle(output, labels)) < 1e-12
    assert rel_error(soft.from_similarities(pairs), soft(output, labels)) < 1e-12


def test_kernels_do_not_modify_their_inputs():
    img, txt, labels = batch(seed=7)
    pairs = cosine_similarities(img, txt, labels)
    before = [m.clone() for m in pairs]
    loss = CircleSoftLoss().double()
    loss.circle.from_similarities(pairs) + loss.soft.from_similarities(pairs)
    for a, b in zip(pairs, before):
        assert torch.equal(a, b)


def test_all_finite_needs_every_entry_finite():
    assert _all_finite(torch.ones(3, 4))
    # finite entries whose sum overflows float32 are still finite
    assert _all_finite(torch.full((4, 4), 3e38))
    for bad in (float("nan"), float("inf"), float("-inf")):
        x = torch.ones(3, 4)
        x[1, 2] = bad
        assert not _all_finite(x)
    x = torch.ones(3, 4)
    x[0, 0], x[2, 3] = float("inf"), float("-inf")
    assert not _all_finite(x)


def test_backward_twice_with_retain_graph_gives_the_same_gradient():
    img, txt, labels = batch(seed=13)
    v, t = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
    loss = CircleSoftLoss().double()

    class Output:
        image_embedding, text_embedding = v, t

    value = loss(Output, labels)
    first = torch.autograd.grad(value, (v, t), retain_graph=True)
    second = torch.autograd.grad(value, (v, t))
    for a, b in zip(first, second):
        assert torch.equal(a, b)
