"""Adjacency self-supervision loss (ALGCN) against a plain loop."""
from __future__ import annotations

import pytest
import torch

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import AdjacencySupervisionLoss, adjacency_supervision_loss


def reference(adjacency, prior, masks, cap=0.5):
    c = adjacency.shape[0]
    total = 0.0
    for mask in masks:
        term = 0.0
        for i in range(c):
            for j in range(c):
                target = min(float(prior[i, j]) + float(mask[i, j]), cap)
                term += (float(adjacency[i, j]) - target) ** 2
        total += term / (c * c)
    return total


def random_case(c=5, k=3, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    adjacency = torch.rand(c, c, generator=gen, dtype=torch.float64).to(dtype)
    prior = 0.5 * (torch.rand(c, c, generator=gen) < 0.4).to(dtype) + torch.eye(c, dtype=dtype)
    masks = (torch.rand(k, c, c, generator=gen) < 0.2).to(dtype)
    return adjacency, prior, masks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference_float64(seed):
    adjacency, prior, masks = random_case(seed=seed)
    value = adjacency_supervision_loss(adjacency, prior, masks).item()
    assert value == pytest.approx(reference(adjacency, prior, masks), rel=1e-12)


def test_matches_loop_reference_float32_and_other_cap():
    adjacency, prior, masks = random_case(seed=3, dtype=torch.float32)
    value = adjacency_supervision_loss(adjacency, prior, masks, cap=0.75)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(adjacency, prior, masks, cap=0.75), rel=1e-5)


def test_a_single_mask_is_one_draw():
    adjacency, prior, masks = random_case(seed=4)
    value = adjacency_supervision_loss(adjacency, prior, masks[0]).item()
    assert value == pytest.approx(reference(adjacency, prior, masks[:1]), rel=1e-12)


def test_gradient_reaches_the_adjacency_only():
    adjacency, prior, masks = random_case(seed=5)
    adjacency.requires_grad_(True)
    prior.requires_grad_(True)
    adjacency_supervision_loss(adjacency, prior, masks).backward()
    assert prior.grad is None
    grad = adjacency.grad
    adjacency, prior = adjacency.detach(), prior.detach()
    c = adjacency.shape[0]
    expected = torch.zeros_like(adjacency)
    for mask in masks:
        for i in range(c):
            for j in range(c):
                target = min(float(prior[i, j]) + float(mask[i, j]), 0.5)
                expected[i, j] += 2.0 * (float(adjacency[i, j]) - target) / (c * c)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def test_module_draws_masks_from_the_global_generator():
    adjacency, prior, _ = random_case(c=6, seed=6)
    output = type("Output", (), {"adjacency": adjacency, "prior_adjacency": prior})()
    term = AdjacencySupervisionLoss(negative_ratio=0.3, num_draws=2)
    torch.manual_seed(11)
    value = term(output, torch.zeros(2, 6)).item()
    torch.manual_seed(11)
    masks = [torch.bernoulli(torch.full_like(adjacency, 0.3)) for _ in range(2)]
    assert value == pytest.approx(reference(adjacency, prior, masks), rel=1e-12)
    torch.manual_seed(11)
    assert term(output, torch.zeros(2, 6)).item() == value


def test_module_ratio_zero_and_transposed_prior():
    adjacency, prior, _ = random_case(c=4, seed=7)
    output = type("Output", (), {"adjacency": adjacency, "prior_adjacency": prior})()
    none = [torch.zeros(4, 4)]
    plain = AdjacencySupervisionLoss(negative_ratio=0.0, num_draws=1)(output, torch.zeros(2, 4)).item()
    flipped = AdjacencySupervisionLoss(negative_ratio=0.0, num_draws=1, transpose_prior=True)(
        output, torch.zeros(2, 4)).item()
    assert plain == pytest.approx(reference(adjacency, prior, none), rel=1e-12)
    assert flipped == pytest.approx(reference(adjacency, prior.T, none), rel=1e-12)
    assert plain != pytest.approx(flipped)


def test_bad_inputs_raise_one_clear_error():
    adjacency, prior, masks = random_case()
    with pytest.raises(DataError, match="square"):
        adjacency_supervision_loss(adjacency[:3], prior, masks)
    with pytest.raises(DataError, match="prior"):
        adjacency_supervision_loss(adjacency, prior[:3, :3], masks)
    with pytest.raises(DataError, match="negatives"):
        adjacency_supervision_loss(adjacency, prior, masks[:, :2])
    with pytest.raises(ConfigError, match="negative_ratio"):
        AdjacencySupervisionLoss(negative_ratio=1.5)
    with pytest.raises(ConfigError, match="num_draws"):
        AdjacencySupervisionLoss(num_draws=0)
    with pytest.raises(DataError, match="adjacency"):
        AdjacencySupervisionLoss()(object(), torch.zeros(2, 3))


def test_half_precision_adjacency_computes_in_float32():
    adjacency, prior, masks = random_case(seed=8, dtype=torch.float32)
    value = adjacency_supervision_loss(adjacency.bfloat16(), prior, masks)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(adjacency.bfloat16().float(), prior, masks), rel=1e-5)
