"""Plain-loop references of DSCMR's loss terms (Zhen et al., CVPR 2019, eqs. 1, 2, 4), float64 scalars.

Shared by the DSCMR loss tests; nothing here calls the package. Every sum is a Python loop over
scalar tensors, so autograd differentiates the formulas as written.
"""
from __future__ import annotations

import math

import torch


def _sqrt(x):
    return torch.sqrt(x) if isinstance(x, torch.Tensor) else math.sqrt(x)


def scaled_norm(rows, norm):
    """``rows``: a list of lists of scalars, the rows of D. frobenius: ||D||_F / n; rows: mean_i ||D_i||."""
    n = len(rows)
    if norm == "frobenius":
        return _sqrt(sum(d * d for row in rows for d in row)) / n
    return sum(_sqrt(sum(d * d for d in row)) for row in rows) / n


def label_space(image_scores, text_scores, labels, norm="frobenius"):
    """J1 = (1/n)||P^T U - Y||_F + (1/n)||P^T V - Y||_F (eq. 1), P^T u_i given as the score rows."""
    n, c = labels.shape
    total = 0.0
    for scores in (image_scores, text_scores):
        rows = [[scores[i, j] - float(labels[i, j]) for j in range(c)] for i in range(n)]
        total = total + scaled_norm(rows, norm)
    return total


def modality_invariance(image, text, norm="frobenius"):
    """J3 = (1/n)||U - V||_F (eq. 4)."""
    n, d = image.shape
    return scaled_norm([[image[i, k] - text[i, k] for k in range(d)] for i in range(n)], norm)


def _cos(a, i, b, j):
    dot = sum(a[i, k] * b[j, k] for k in range(a.shape[1]))
    return dot / (_sqrt(sum(a[i, k] * a[i, k] for k in range(a.shape[1])))
                  * _sqrt(sum(b[j, k] * b[j, k] for k in range(b.shape[1]))))


def similarity(labels, i, j, kind="shared"):
    shared = sum(float(labels[i, c]) * float(labels[j, c]) for c in range(labels.shape[1]))
    return (1.0 if shared > 0 else 0.0) if kind == "shared" else shared


def common_space(image, text, labels, kind="shared"):
    """J2 (eq. 2): mean over all n^2 pairs of log(1 + e^x) - S x, x half the cosine, for (u, v), (u, u), (v, v)."""
    n = labels.shape[0]
    total = 0.0
    for a, b in ((image, text), (image, image), (text, text)):
        term = 0.0
        for i in range(n):
            for j in range(n):
                x = 0.5 * _cos(a, i, b, j)
                term = term + torch.log(1 + torch.exp(x)) - similarity(labels, i, j, kind) * x
        total = total + term / (n * n)
    return total
