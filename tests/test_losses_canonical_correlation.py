"""DCCA's total canonical correlation against the paper's equations (Andrew et al., ICML 2013)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gcnretrieval.errors import DataError
from gcnretrieval.checks import InvalidArgument
from gcnretrieval.losses.canonical_correlation import (CanonicalCorrelationLoss, total_canonical_correlation,
                                                       total_canonical_correlation_loss)


def views(n=12, o1=4, o2=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    h1 = torch.cat([z, torch.randn(n, o1 - 2, generator=g, dtype=torch.float64)], 1) @ torch.randn(
        o1, o1, generator=g, dtype=torch.float64)
    h2 = torch.cat([z + 0.3 * torch.randn(n, 2, generator=g, dtype=torch.float64),
                    torch.randn(n, o2 - 2, generator=g, dtype=torch.float64)], 1)
    return h1.to(dtype), h2.to(dtype)


def inverse_sqrt(a):
    values, vectors = np.linalg.eigh(a)
    return vectors @ np.diag(values ** -0.5) @ vectors.T


def reference(h1, h2, r1, r2, top_k=None):
    """Section 2 of the paper, sample by sample: centred H (o x m, one column per item),
    Sigma_12 = H1 H2^T / (m-1), Sigma_vv = Hv Hv^T / (m-1) + r_v I, T = S11^-1/2 S12 S22^-1/2,
    corr = sum of the singular values of T. Also the paper's gradient of corr w.r.t. H1 and H2:
    d corr / d H1 = (2 D11 H1bar + D12 H2bar) / (m-1), D12 = S11^-1/2 U V^T S22^-1/2,
    D11 = -1/2 S11^-1/2 U D U^T S11^-1/2 (and symmetrically for H2)."""
    a, b = np.asarray(h1, dtype=np.float64), np.asarray(h2, dtype=np.float64)
    m, o1, o2 = a.shape[0], a.shape[1], b.shape[1]
    mean1 = [sum(a[i, p] for i in range(m)) / m for p in range(o1)]
    mean2 = [sum(b[i, q] for i in range(m)) / m for q in range(o2)]
    hb1 = np.array([[a[i, p] - mean1[p] for i in range(m)] for p in range(o1)])  # o1 x m
    hb2 = np.array([[b[i, q] - mean2[q] for i in range(m)] for q in range(o2)])
    s11, s22, s12 = np.zeros((o1, o1)), np.zeros((o2, o2)), np.zeros((o1, o2))
    for i in range(m):
        for p in range(o1):
            for q in range(o1):
                s11[p, q] += hb1[p, i] * hb1[q, i] / (m - 1)
            for q in range(o2):
                s12[p, q] += hb1[p, i] * hb2[q, i] / (m - 1)
        for p in range(o2):
            for q in range(o2):
                s22[p, q] += hb2[p, i] * hb2[q, i] / (m - 1)
    s11 += r1 * np.eye(o1)
    s22 += r2 * np.eye(o2)
    w1, w2 = inverse_sqrt(s11), inverse_sqrt(s22)
    t = w1 @ s12 @ w2
    u, d, vt = np.linalg.svd(t, full_matrices=False)
    k = len(d) if top_k is None else top_k
    u, d, vt = u[:, :k], d[:k], vt[:k]
    corr = sum(d[i] for i in range(k))
    d12 = w1 @ u @ vt @ w2
    d11 = -0.5 * w1 @ u @ np.diag(d) @ u.T @ w1
    d22 = -0.5 * w2 @ vt.T @ np.diag(d) @ vt @ w2
    grad1 = (2 * d11 @ hb1 + d12 @ hb2) / (m - 1)
    grad2 = (2 * d22 @ hb2 + d12.T @ hb1) / (m - 1)
    return corr, grad1.T, grad2.T  # gradients as (m, o), like the inputs


@pytest.mark.parametrize("top_k", [None, 1, 2])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_value_and_gradient_match_the_paper(top_k, dtype, tol):
    h1, h2 = views(dtype=dtype)
    r1, r2 = 1e-3, 2e-3
    want, grad1, grad2 = reference(h1.double(), h2.double(), r1, r2, top_k)
    h1.requires_grad_(True)
    h2.requires_grad_(True)
    got = total_canonical_correlation(h1, h2, r1, r2, top_k)
    assert got.dtype == dtype
    got.backward()
    assert math.isclose(float(got.detach()), want, rel_tol=tol)
    np.testing.assert_allclose(h1.grad.double().numpy(), grad1, rtol=tol * 100, atol=tol * 10)
    np.testing.assert_allclose(h2.grad.double().numpy(), grad2, rtol=tol * 100, atol=tol * 10)


def test_loss_is_the_negative_correlation_and_the_module_reads_the_output():
    h1, h2 = views()
    corr, _, _ = reference(h1, h2, 1e-4, 1e-4)
    assert math.isclose(float(total_canonical_correlation_loss(h1, h2)), -corr, rel_tol=1e-10)

    class Output:
        image_embedding, text_embedding = h1, h2

    term = CanonicalCorrelationLoss(r1=1e-4, r2=1e-4)
    assert math.isclose(float(term(Output(), torch.zeros(12, 3))), -corr, rel_tol=1e-10)


def test_gradcheck_float64():
    h1, h2 = views(n=8, o1=3, o2=3)
    h1.requires_grad_(True)
    h2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: total_canonical_correlation(a, b, 1e-3, 1e-3), (h1, h2))
    assert torch.autograd.gradcheck(lambda a, b: total_canonical_correlation(a, b, 1e-3, 1e-3, 2), (h1, h2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fewer_rows_than_outputs_gives_finite_gradients(dtype):
    # n - 1 < o: the ridge covariance has o - n + 1 equal eigenvalues r, where an eigendecomposition's
    # gradient would divide by zero
    h1, h2 = views(n=4, o1=6, o2=5, dtype=dtype)
    h1.requires_grad_(True)
    h2.requires_grad_(True)
    value = total_canonical_correlation(h1, h2, 1e-4, 1e-4)
    value.backward()
    want, grad1, _ = reference(h1.detach().double(), h2.detach().double(), 1e-4, 1e-4)
    # n = 4 items: the 3 non-zero canonical correlations are all ~1 (up to the ridge)
    assert math.isclose(float(value.detach()), want, rel_tol=1e-4)
    assert torch.isfinite(h1.grad).all() and torch.isfinite(h2.grad).all()


def test_half_inputs_give_a_float32_value():
    h1, h2 = views(dtype=torch.float32)
    got = total_canonical_correlation(h1.bfloat16(), h2.bfloat16())
    assert got.dtype == torch.float32
    want, _, _ = reference(h1.bfloat16().double(), h2.bfloat16().double(), 1e-4, 1e-4)
    assert math.isclose(float(got), want, rel_tol=1e-5)


def test_correlation_is_invariant_to_invertible_linear_maps():
    h1, h2 = views()
    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = total_canonical_correlation(h1, h2, 1e-12, 1e-12)
    mapped = total_canonical_correlation(h1 @ a + 5.0, h2, 1e-12, 1e-12)
    assert math.isclose(float(exact), float(mapped), rel_tol=1e-6)


def test_bad_inputs_are_refused():
    h1, h2 = views()
    with pytest.raises(DataError, match="rows"):
        total_canonical_correlation(h1, h2[:-1])
    with pytest.raises(DataError, match="at least 2 rows"):
        total_canonical_correlation(h1[:1], h2[:1])
    with pytest.raises(InvalidArgument, match="r1"):
        total_canonical_correlation(h1, h2, 0.0, 1e-4)
    with pytest.raises(DataError, match="top_k = 4 exceeds"):
        total_canonical_correlation(h1, h2, top_k=4)
    with pytest.raises(DataError, match="not positive definite"):
        total_canonical_correlation(h1 * float("nan"), h2)
