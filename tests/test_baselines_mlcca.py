"""Multi-label CCA (Ranjan, Rasiwasia and Jawahar, ICCV 2015) against a plain-loop reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from gcnretrieval.errors import DataError
from gcnretrieval.experiments import fit_baseline
from gcnretrieval.models.baselines import ClosedFormCCA, MultiLabelCCA


def views_with_labels(n=40, dx=5, dy=4, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.3).astype(np.float64)
    labels[0] = 0.0  # an item without labels
    signal = labels @ rng.standard_normal((classes, 3))
    x = np.c_[signal, rng.standard_normal((n, dx - 3))] @ rng.standard_normal((dx, dx))
    y = np.c_[signal, rng.standard_normal((n, dy - 3))] @ rng.standard_normal((dy, dy))
    return x + 0.5 * rng.standard_normal(x.shape), y + 0.5 * rng.standard_normal(y.shape), labels


def cosine(a, b):
    dot = sum(a[c] * b[c] for c in range(len(a)))
    na = math.sqrt(sum(v * v for v in a))
    nb = math.sqrt(sum(v * v for v in b))
    return 0.0 if na == 0 or nb == 0 else dot / (na * nb)


def reference(x, y, labels, k, r):
    """The paper's equations, one pair at a time: C_xy = sum_ij s_ij x_i y_j^T over all pairs,
    C_xx, C_yy the within-modality covariances (+ r I), and the generalised eigenproblem
    [[0, C_xy], [C_yx, 0]] w = rho [[C_xx, 0], [0, C_yy]] w solved by scipy."""
    n, dx, dy = x.shape[0], x.shape[1], y.shape[1]
    mx = [sum(x[i, a] for i in range(n)) / n for a in range(dx)]
    my = [sum(y[i, b] for i in range(n)) / n for b in range(dy)]
    xc = [[x[i, a] - mx[a] for a in range(dx)] for i in range(n)]
    yc = [[y[i, b] - my[b] for b in range(dy)] for i in range(n)]
    cxy = np.zeros((dx, dy))
    for i in range(n):
        for j in range(n):
            s = cosine(labels[i], labels[j])
            for a in range(dx):
                for b in range(dy):
                    cxy[a, b] += s * xc[i][a] * yc[j][b]
    cxx = np.zeros((dx, dx))
    cyy = np.zeros((dy, dy))
    for i in range(n):
        for a in range(dx):
            for c in range(dx):
                cxx[a, c] += xc[i][a] * xc[i][c]
        for b in range(dy):
            for c in range(dy):
                cyy[b, c] += yc[i][b] * yc[i][c]
    cxy, cxx, cyy = cxy / (n - 1), cxx / (n - 1) + r * np.eye(dx), cyy / (n - 1) + r * np.eye(dy)
    lhs = np.block([[np.zeros((dx, dx)), cxy], [cxy.T, np.zeros((dy, dy))]])
    rhs = np.block([[cxx, np.zeros((dx, dy))], [np.zeros((dy, dx)), cyy]])
    rho, w = scipy.linalg.eigh(lhs, rhs)
    order = np.argsort(rho)[::-1][:k]
    wx, wy = w[:dx, order], w[dx:, order]
    # scale each direction to unit variance in its own view: w^T C w = 1
    wx = wx / np.sqrt(np.einsum("ak,ab,bk->k", wx, cxx, wx))
    wy = wy / np.sqrt(np.einsum("ak,ab,bk->k", wy, cyy, wy))
    return rho[order], wx, wy, np.array(mx), np.array(my)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlcca_matches_the_loop_reference(dtype):
    x, y, labels = views_with_labels()
    k, r = 3, 1e-3
    rho, wx, wy, mx, my = reference(x, y, labels, k, r)
    fitted = MultiLabelCCA(k, regularization=r).fit(x.astype(dtype), y.astype(dtype), labels.astype(dtype))
    tol = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(fitted.correlations_, rho, rtol=tol * 10)
    a, b = fitted.transform(x, y)
    expected_a, expected_b = (x - mx) @ wx, (y - my) @ wy
    for c in range(k):  # each canonical pair is defined up to one common sign
        sign = np.sign(a[:, c] @ expected_a[:, c])
        np.testing.assert_allclose(a[:, c], sign * expected_a[:, c], atol=tol * 100)
        np.testing.assert_allclose(b[:, c], sign * expected_b[:, c], atol=tol * 100)


def test_mlcca_with_identity_label_similarity_is_cca():
    x, y, _ = views_with_labels(n=60)
    own = np.eye(60)  # every item its own label: s_ij = delta_ij
    ml = MultiLabelCCA(3, regularization=1e-3).fit(x, y, own)
    plain = ClosedFormCCA(3, regularization=1e-3).fit(x, y)
    np.testing.assert_allclose(ml.correlations_, plain.correlations_, rtol=1e-10)
    for got, want in zip(ml.transform(x, y), plain.transform(x, y)):
        signs = np.sign(np.sum(got * want, axis=0))
        np.testing.assert_allclose(got, want * signs, atol=1e-9)


def test_mlcca_differs_from_cca_when_labels_are_shared():
    x, y, labels = views_with_labels(n=60)
    ml = MultiLabelCCA(2).fit(x, y, labels)
    plain = ClosedFormCCA(2).fit(x, y)
    assert not np.allclose(ml.correlations_, plain.correlations_)


def test_fit_baseline_passes_the_training_labels():
    x, y, labels = views_with_labels(n=60)
    fitted = fit_baseline("mlcca", x, y, n_components=2, labels=labels)
    xs, ys = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)
    direct = MultiLabelCCA(2).fit(xs, ys, labels)
    a, b = fitted.embed(x, y)
    want_a, want_b = direct.transform(xs, ys)
    np.testing.assert_allclose(a, want_a, atol=1e-10)
    np.testing.assert_allclose(b, want_b, atol=1e-10)
    assert np.isfinite(a).all() and np.isfinite(b).all()


def test_mlcca_refuses_missing_or_misshapen_labels():
    x, y, labels = views_with_labels(n=30)
    with pytest.raises(DataError, match="fitted on the training labels"):
        fit_baseline("mlcca", x, y, n_components=2)
    with pytest.raises(DataError, match="one \\(n, C\\) multi-hot label row"):
        MultiLabelCCA(2).fit(x, y, labels[:-1])
    # the other baselines never see labels
    fit_baseline("cca", x, y, n_components=2, labels=labels)


def test_compare_runs_mlcca_with_the_training_labels(tmp_path):
    from gcnretrieval.experiments import compare

    recipe = {"run": {"name": "m", "seed": 0},
              "data": {"source": "synthetic", "synthetic": {"num_train": 120, "num_test": 30, "num_labels": 5,
                                                            "image_dim": 16, "text_dim": 12}},
              "graph": {"node_features": "random"}, "encoder": {"name": "gcn"}, "train": {"device": "cpu"}}
    result = compare(recipe, methods=["mlcca", "cca"], out=tmp_path / "c")
    rows = {row["method"]: row for row in result.rows}
    assert rows["mlcca"]["kind"] == "baseline" and 0.0 < rows["mlcca"]["avg_map_mean"] <= 1.0
    assert rows["mlcca"]["avg_map_mean"] != rows["cca"]["avg_map_mean"]


def test_at_most_one_component_per_label_is_kept():
    x, y, labels = views_with_labels(n=30, dx=8, dy=7, classes=3)
    fitted = fit_baseline("mlcca", x, y, n_components=6, labels=labels)
    a, b = fitted.embed(x, y)
    assert fitted.n_components == 3 and a.shape == (30, 3) and b.shape == (30, 3)
    # the label-weighted cross-covariance has rank <= 3 (= the number of labels); the kept
    # correlations are the reference's three non-zero ones
    xs, ys = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)
    rho, _, _, _, _ = reference(xs, ys, labels, 6, 1e-3)
    np.testing.assert_allclose(rho[3:], 0.0, atol=1e-8)
    np.testing.assert_allclose(fitted.estimator.correlations_, rho[:3], rtol=1e-8)
