"""ACMR's cross-modal triplet loss (inter-modal invariance, eqs. 2-5) against a plain loop."""
from __future__ import annotations

import pytest
import torch
from loss_references import rel_error, value_and_grads

from gcnretrieval.errors import DataError, InvalidArgument
from gcnretrieval.losses import CrossModalTripletLoss, cross_modal_triplet_loss


def _distance(a, b):
    squared = sum((a[k] - b[k]) ** 2 for k in range(len(a)))
    if float(squared.detach()) == 0.0:
        return squared * 0.0  # the stated convention: zero gradient at zero distance
    return torch.sqrt(squared)


def _shares(labels, i, j):
    return sum(float(labels[i, c]) * float(labels[j, c]) for c in range(labels.size(1))) > 0


def reference(image, text, labels, margin=0.1, negative_weight=1.0):
    """Mean over every triplet (anchor i, positive j, negative k) of both directions, one by one."""
    n = labels.size(0)
    total, count = torch.zeros((), dtype=torch.float64), 0
    for i in range(n):
        for j in range(n):
            if not _shares(labels, i, j):
                continue
            for k in range(n):
                if _shares(labels, i, k):
                    continue
                count += 1
                for anchor, other in ((image, text), (text, image)):
                    pull = _distance(anchor[i], other[j])
                    push = torch.clamp(margin - _distance(anchor[i], other[k]), min=0)
                    total = total + pull + negative_weight * push
    return total / max(count, 1)


def random_batch(n=7, d=4, c=4, seed=0, dtype=torch.float64, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    image = (torch.randn(n, d, generator=gen, dtype=torch.float64) * scale).to(dtype)
    text = (torch.randn(n, d, generator=gen, dtype=torch.float64) * scale).to(dtype)
    labels = (torch.rand(n, c, generator=gen) < 0.35).double()
    labels[0] = 0  # a row without labels: negative with everything, anchor of no triplet
    return image, text, labels


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("margin, negative_weight", [(0.1, 1.0), (0.8, 0.5), (2.0, 3.0)])
def test_matches_loop_reference_float64(seed, margin, negative_weight):
    image, text, labels = random_batch(seed=seed)
    kwargs = {"margin": margin, "negative_weight": negative_weight}
    value, grads = value_and_grads(cross_modal_triplet_loss, (image, text), labels, **kwargs)
    ref_value, ref_grads = value_and_grads(reference, (image, text), labels, **kwargs)
    assert ref_value > 0
    assert abs(value.item() - ref_value.item()) <= 1e-12 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert rel_error(g, r) < 1e-10


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_matches_float64_reference(seed):
    image, text, labels = random_batch(seed=seed, dtype=torch.float32)
    kwargs = {"margin": 0.8, "negative_weight": 0.5}
    value, grads = value_and_grads(cross_modal_triplet_loss, (image, text), labels.float(), **kwargs)
    assert value.dtype == torch.float32
    ref_value, ref_grads = value_and_grads(reference, (image.double(), text.double()), labels, **kwargs)
    assert abs(value.item() - ref_value.item()) <= 1e-5 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert g.dtype == torch.float32
        assert rel_error(g, r) < 1e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_compute_in_float32(dtype):
    image, text, labels = random_batch(seed=5, dtype=dtype)
    kwargs = {"margin": 0.8, "negative_weight": 0.5}
    value, grads = value_and_grads(cross_modal_triplet_loss, (image, text), labels.to(dtype), **kwargs)
    assert value.dtype == torch.float32
    # reference on the rounded inputs, so only the loss's own float32 arithmetic differs
    ref_value, ref_grads = value_and_grads(reference, (image.double(), text.double()), labels, **kwargs)
    assert abs(value.item() - ref_value.item()) <= 1e-5 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert g.dtype == dtype
        assert rel_error(g, r) < torch.finfo(dtype).eps + 1e-4


def test_under_autocast_the_loss_runs_in_float32():
    image, text, labels = random_batch(seed=6, dtype=torch.float32)
    kwargs = {"margin": 0.8, "negative_weight": 0.5}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = cross_modal_triplet_loss(image, text, labels.float(), **kwargs)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(image.double(), text.double(), labels, **kwargs).item(), rel=1e-5)


def test_gradcheck():
    image, text, labels = random_batch(n=5, d=3, seed=7)
    image.requires_grad_(True)
    text.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: cross_modal_triplet_loss(a, b, labels, margin=0.8), (image, text))


def test_hand_computed_value():
    # two pairs with different labels; v_0 = t_0 and v_1 = t_1, |v_0 - v_1| = 5
    image = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # triplets (i, j, k) = (0, 0, 1), (1, 1, 0) per direction: pull 0, push max(0, 6 - 5) = 1
    value = cross_modal_triplet_loss(image, image.clone(), labels, margin=6.0, negative_weight=2.0)
    assert value.item() == pytest.approx((2 * 2.0 * 1.0 + 2 * 2.0 * 1.0) / 2)


def test_zero_distance_positive_has_a_finite_zero_gradient():
    image, text, labels = random_batch(seed=8)
    text = text.clone()
    text[1] = image[1]
    labels[1] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    labels[2:, 0] = 0  # pair 1 is its own only positive: its pull term has distance 0
    labels[2, 1] = 1
    _, (g_image, g_text) = value_and_grads(cross_modal_triplet_loss, (image, text), labels, margin=0.05)
    assert torch.isfinite(g_image).all() and torch.isfinite(g_text).all()
    _, ref_grads = value_and_grads(reference, (image, text), labels, margin=0.05)
    assert rel_error(g_image, ref_grads[0]) < 1e-10
    assert rel_error(g_text, ref_grads[1]) < 1e-10


def reference_by_anchor(image, text, labels, margin=0.1, negative_weight=1.0):
    """The same mean with the sum over triplets taken per anchor: each positive j of anchor i meets
    every negative k of i, so sum_(j,k) (pull_ij + push_ik) = N_i sum_j pull_ij + P_i sum_k push_ik.
    Pairs instead of triplets: cheap enough for batches beyond 25 rows."""
    n = labels.size(0)
    total, count = torch.zeros((), dtype=torch.float64), 0
    for i in range(n):
        positives = [j for j in range(n) if _shares(labels, i, j)]
        negatives = [k for k in range(n) if not _shares(labels, i, k)]
        count += len(positives) * len(negatives)
        for anchor, other in ((image, text), (text, image)):
            for j in positives:
                total = total + len(negatives) * _distance(anchor[i], other[j])
            for k in negatives:
                total = total + negative_weight * len(positives) * torch.clamp(margin - _distance(anchor[i], other[k]), min=0)
    return total / max(count, 1)


def test_the_two_references_agree():
    image, text, labels = random_batch(seed=12)
    assert reference_by_anchor(image, text, labels, 0.8, 0.5).item() == pytest.approx(
        reference(image, text, labels, 0.8, 0.5).item(), rel=1e-12)


def test_identical_embeddings_in_a_large_batch_are_at_distance_zero():
    # beyond 25 rows torch.cdist would by default use the matrix-product form, off by ~1e-3 at 0
    n = 30
    image, _, _ = random_batch(n=n, seed=11, dtype=torch.float32, scale=3.0)
    labels = torch.eye(n)  # each pair's only positive is itself, at distance 0
    value, grads = value_and_grads(cross_modal_triplet_loss, (image, image.clone()), labels, margin=0.0)
    assert value.item() == 0.0
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)
    # the same batch against the per-anchor reference, with a margin that the negatives meet
    value, grads = value_and_grads(cross_modal_triplet_loss, (image, image.clone()), labels, margin=5.0)
    ref_value, ref_grads = value_and_grads(reference_by_anchor, (image.double(), image.double()), labels.double(),
                                           margin=5.0)
    assert abs(value.item() - ref_value.item()) <= 1e-5 * ref_value.item()
    assert all(rel_error(g, r) < 1e-4 for g, r in zip(grads, ref_grads))


def test_no_triplet_gives_zero_with_zero_gradient():
    image, text, _ = random_batch(seed=9)
    labels = torch.zeros(7, 4, dtype=torch.float64)
    labels[:, 0] = 1  # every pair positive: no negative anywhere
    value, grads = value_and_grads(cross_modal_triplet_loss, (image, text), labels)
    assert value.item() == 0.0
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)


def test_module_reads_the_embeddings():
    image, text, labels = random_batch(seed=10)
    output = type("Output", (), {"image_embedding": image, "text_embedding": text})()
    loss = CrossModalTripletLoss(margin=0.8, negative_weight=0.5)
    assert loss(output, labels).item() == pytest.approx(reference(image, text, labels, 0.8, 0.5).item(), rel=1e-12)
    assert "margin=0.8" in repr(loss)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="rows"):
        cross_modal_triplet_loss(image, text, labels[:3])
    with pytest.raises(DataError, match="differ in shape"):
        cross_modal_triplet_loss(image, text[:, :2], labels)
    with pytest.raises(InvalidArgument, match="margin"):
        cross_modal_triplet_loss(image, text, labels, margin=-1.0)
    with pytest.raises(InvalidArgument, match="negative_weight"):
        CrossModalTripletLoss(negative_weight=float("nan"))
    with pytest.raises(DataError, match="image_embedding"):
        CrossModalTripletLoss()(object(), labels)
