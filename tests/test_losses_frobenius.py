"""ACMR's weight regularisation (eq. 6) against a plain loop."""
from __future__ import annotations

import math

import pytest
import torch
from loss_references import rel_error, value_and_grads

from gcnretrieval.errors import DataError
from gcnretrieval.losses import FrobeniusRegularization, frobenius_regularization


def reference(*weights):
    total = torch.zeros((), dtype=torch.float64)
    for w in weights:
        flat = w.reshape(-1)
        total = total + torch.sqrt(sum(flat[k] ** 2 for k in range(flat.numel())))
    return total


def random_weights(seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype) for shape in ((4, 3), (2, 4), (5,)))


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_loop_reference_float64(seed):
    weights = random_weights(seed)
    value, grads = value_and_grads(lambda *w: frobenius_regularization(w), weights)
    ref_value, ref_grads = value_and_grads(reference, weights)
    assert abs(value.item() - ref_value.item()) <= 1e-12 * ref_value.item()
    for g, r in zip(grads, ref_grads):
        assert rel_error(g, r) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precisions_match_the_float64_reference(dtype):
    weights = random_weights(2, dtype)
    value, grads = value_and_grads(lambda *w: frobenius_regularization(w), weights)
    assert value.dtype == torch.float32
    ref_value, ref_grads = value_and_grads(reference, tuple(w.double() for w in weights))
    assert abs(value.item() - ref_value.item()) <= 1e-6 * ref_value.item()
    for g, r in zip(grads, ref_grads):
        assert g.dtype == dtype
        assert rel_error(g, r) < torch.finfo(dtype).eps + 1e-6


def test_norms_are_not_squared_and_zero_matrices_have_zero_gradient():
    a = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    value = frobenius_regularization([a, zero])
    assert value.item() == pytest.approx(5.0)
    value.backward()
    torch.testing.assert_close(a.grad, torch.tensor([[0.6, 0.8]], dtype=torch.float64))
    assert torch.equal(zero.grad, torch.zeros_like(zero))
    assert math.isfinite(value.item())


def test_module_reads_the_projector_weights():
    weights = random_weights(3)
    output = type("Output", (), {"projector_weights": weights})()
    assert FrobeniusRegularization()(output).item() == pytest.approx(reference(*weights).item(), rel=1e-12)


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(DataError, match="at least one"):
        frobenius_regularization([])
    with pytest.raises(DataError, match="floating-point"):
        frobenius_regularization([torch.ones(2, 2, dtype=torch.long)])
    with pytest.raises(DataError, match="projector_weights"):
        FrobeniusRegularization()(object())
