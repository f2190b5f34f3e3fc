"""RunningCCA: running statistics like BatchNorm's and the linear CCA on them, against loop references."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gcnretrieval.errors import InvalidArgument
from gcnretrieval.models.running_cca import RunningCCA


def batch(n, seed, o1=4, o2=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    h1 = torch.cat([z, torch.randn(n, o1 - 2, generator=g, dtype=torch.float64)], 1) + 1.0
    h2 = torch.cat([z + 0.4 * torch.randn(n, 2, generator=g, dtype=torch.float64),
                    torch.randn(n, o2 - 2, generator=g, dtype=torch.float64)], 1) - 2.0
    return h1.to(dtype), h2.to(dtype)


def batch_statistics(h1, h2):
    """Means and unbiased (co)variances, one row at a time."""
    a, b = h1.double().numpy(), h2.double().numpy()
    n = a.shape[0]
    m1 = sum(a[i] for i in range(n)) / n
    m2 = sum(b[i] for i in range(n)) / n
    c11 = sum(np.outer(a[i] - m1, a[i] - m1) for i in range(n)) / (n - 1)
    c22 = sum(np.outer(b[i] - m2, b[i] - m2) for i in range(n)) / (n - 1)
    c12 = sum(np.outer(a[i] - m1, b[i] - m2) for i in range(n)) / (n - 1)
    return m1, m2, c11, c22, c12


def cca_reference(c11, c22, c12, k, r):
    """The generalised eigenproblem [[0, C12], [C21, 0]] w = rho [[C11 + rI, 0], [0, C22 + rI]] w."""
    o1, o2 = c12.shape
    lhs = np.block([[np.zeros((o1, o1)), c12], [c12.T, np.zeros((o2, o2))]])
    b1, b2 = c11 + r * np.eye(o1), c22 + r * np.eye(o2)
    rhs = np.block([[b1, np.zeros((o1, o2))], [np.zeros((o2, o1)), b2]])
    rho, w = scipy.linalg.eigh(lhs, rhs)
    order = np.argsort(rho)[::-1][:k]
    w1, w2 = w[:o1, order], w[o1:, order]
    w1 = w1 / np.sqrt(np.einsum("ak,ab,bk->k", w1, b1, w1))
    w2 = w2 / np.sqrt(np.einsum("ak,ab,bk->k", w2, b2, w2))
    return rho[order], w1, w2


def test_running_statistics_follow_the_momentum_rule():
    cca = RunningCCA(4, 3, 2, momentum=0.3).double()
    want = [np.zeros(4), np.zeros(3), np.eye(4), np.eye(3), np.zeros((4, 3))]
    for seed in range(3):
        h1, h2 = batch(9, seed)
        cca.update(h1, h2)
        want = [0.7 * old + 0.3 * new for old, new in zip(want, batch_statistics(h1, h2))]
    got = [cca.mean1, cca.mean2, cca.cov11, cca.cov22, cca.cov12]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-12)
    assert int(cca.num_batches_tracked) == 3


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_projection_is_the_cca_of_the_statistics(dtype, tol):
    h1, h2 = batch(40, 0, dtype=dtype)
    cca = RunningCCA(4, 3, 2, ridge=1e-3, momentum=1.0).to(dtype)
    cca.update(h1, h2)
    m1, m2, c11, c22, c12 = batch_statistics(h1, h2)
    rho, w1, w2 = cca_reference(c11, c22, c12, 2, 1e-3)
    _, _, correlations = cca.directions()
    np.testing.assert_allclose(correlations.numpy(), rho, rtol=tol)
    z1, z2 = cca.project(h1, h2)
    assert z1.dtype == dtype and z1.shape == (40, 2) and z2.shape == (40, 2)
    want1 = (h1.double().numpy() - m1) @ w1
    want2 = (h2.double().numpy() - m2) @ w2
    for c in range(2):
        sign = np.sign(z1[:, c].double().numpy() @ want1[:, c])
        np.testing.assert_allclose(z1[:, c].double().numpy(), sign * want1[:, c], atol=tol * 10)
        np.testing.assert_allclose(z2[:, c].double().numpy(), sign * want2[:, c], atol=tol * 10)


def test_buffers_are_saved_and_reset():
    cca = RunningCCA(4, 3, 3)
    h1, h2 = batch(10, 1, dtype=torch.float32)
    cca.update(h1, h2)
    state = cca.state_dict()
    assert set(state) == {"mean1", "mean2", "cov11", "cov22", "cov12", "num_batches_tracked"}
    copy = RunningCCA(4, 3, 3)
    copy.load_state_dict(state)
    for a, b in zip(copy.project(h1, h2), cca.project(h1, h2)):
        torch.testing.assert_close(a, b)
    cca.reset_parameters()
    torch.testing.assert_close(cca.cov11, torch.eye(4))
    assert int(cca.num_batches_tracked) == 0


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidArgument, match="out_channels"):
        RunningCCA(4, 3, 4)
    with pytest.raises(InvalidArgument, match="momentum"):
        RunningCCA(4, 3, 2, momentum=0.0)
    with pytest.raises(InvalidArgument, match="ridge"):
        RunningCCA(4, 3, 2, ridge=0.0)
