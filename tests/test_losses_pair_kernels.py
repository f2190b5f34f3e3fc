"""The fused pairwise kernels: both exponent-shift paths, exact gradients, the shared path."""
from __future__ import annotations

import pytest
import torch

from gcnretrieval.losses import CircleSoftLoss, circle_loss, soft_contrastive_loss
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


@pytest.mark.parametrize("reduction", ["global", "per_anchor"])
@pytest.mark.parametrize("gamma", [16.0, 64.0])  # 4 gamma within EXP_RANGE or not
def test_circle_soft_shares_the_similarities_exactly(reduction, gamma):
    img, txt, labels = batch(seed=5)
    loss = CircleSoftLoss(theta=0.35, gamma=gamma, reduction=reduction).double()

    class Output:
        image_embedding = img.clone().requires_grad_(True)
        text_embedding = txt.clone().requires_grad_(True)

    parts = loss.components(Output, labels)
    shared = torch.autograd.grad(parts["circle_soft"], (Output.image_embedding, Output.text_embedding))

    v, t = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
    circle = circle_loss(v, labels, gamma=gamma, reduction=reduction) + circle_loss(
        t, labels, gamma=gamma, reduction=reduction
    )
    soft = soft_contrastive_loss(v, t, labels)
    lam = parts["lambda"].item()  # 0.35 held as a float32 parameter, then cast
    separate_value = lam * circle + (1.0 - lam) * soft
    separate = torch.autograd.grad(separate_value, (v, t))

    assert parts["circle"].item() == pytest.approx(circle.item(), rel=1e-12)
    assert parts["soft"].item() == pytest.approx(soft.item(), rel=1e-12)
    for a, b in zip(shared, separate):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


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
