"""Plain-loop references of the pairwise losses, written from METHOD §4 (float64 scalars).

Shared by the loss tests; nothing here calls the package. Every cosine, exponent and
log-sum-exp is a Python loop over scalar tensors, so autograd differentiates the formula as
written (the stop-gradient on the Circle weights included).
"""
from __future__ import annotations

import torch
from torch import Tensor

M, GAMMA = 0.25, 16.0
TAU, GAMMA_S, KAPPA = 0.22, 0.14, 1.06


# ----------------------------------------------------------------------------- Circle
def _lse(terms):
    top = max(float(t.detach()) for t in terms)
    return top + torch.log(sum(torch.exp(t - top) for t in terms))


def _softplus(z):
    return torch.clamp(z, min=0) + torch.log1p(torch.exp(-torch.abs(z)))


def _pair_term(s, shares, m, gamma):
    if shares:
        alpha_p = torch.clamp(1 + m - s.detach(), min=0)
        return "p", -gamma * alpha_p * (s - (1 - m))
    alpha_n = torch.clamp(s.detach() + m, min=0)
    return "n", gamma * alpha_n * (s - m)


def _cos(x, i, j):
    xi, xj = x[i], x[j]
    dot = sum(xi[k] * xj[k] for k in range(len(xi)))
    return dot / (torch.sqrt(sum(v * v for v in xi)) * torch.sqrt(sum(v * v for v in xj)))


def _shares(y, i, j):
    return sum(float(y[i, c]) * float(y[j, c]) for c in range(y.shape[1])) > 0


def circle_global(x, y, m=M, gamma=GAMMA):
    """One term over all pairs i < j (METHOD §4)."""
    pos, neg = [], []
    n = x.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            kind, term = _pair_term(_cos(x, i, j), _shares(y, i, j), m, gamma)
            (pos if kind == "p" else neg).append(term)
    if not pos or not neg:
        return x.sum() * 0.0
    return _softplus(_lse(neg) + _lse(pos))


def circle_per_anchor(x, y, m=M, gamma=GAMMA):
    """Per anchor over j != i; mean over anchors with a positive and a negative."""
    losses = []
    n = x.shape[0]
    for i in range(n):
        pos, neg = [], []
        for j in range(n):
            if j == i:
                continue
            kind, term = _pair_term(_cos(x, i, j), _shares(y, i, j), m, gamma)
            (pos if kind == "p" else neg).append(term)
        if pos and neg:
            losses.append(_softplus(_lse(neg) + _lse(pos)))
    if not losses:
        return x.sum() * 0.0
    return sum(losses) / len(losses)


def circle(x, y, m=M, gamma=GAMMA, reduction="global"):
    """:func:`circle_global` or :func:`circle_per_anchor`."""
    return (circle_global if reduction == "global" else circle_per_anchor)(x, y, m, gamma)


# ------------------------------------------------------------------ soft contrastive
def _unit(row):
    norm = torch.sqrt(sum(v * v for v in row))
    return [v / norm for v in row]


def _dot(a, b):
    return sum(p * q for p, q in zip(a, b))


def soft_contrastive(img, txt, labels, tau=TAU, gamma_s=GAMMA_S, kappa=KAPPA):
    """Loops over i, j, k, written from METHOD §4."""
    n, c = labels.shape
    v = [_unit(img[i]) for i in range(n)]
    t = [_unit(txt[i]) for i in range(n)]
    sims = {
        "vt": [[_dot(v[i], t[j]) / tau for j in range(n)] for i in range(n)],
        "vv": [[_dot(v[i], v[j]) / tau for j in range(n)] for i in range(n)],
        "tt": [[_dot(t[i], t[j]) / tau for j in range(n)] for i in range(n)],
    }
    sims["tv"] = [[sims["vt"][j][i] for j in range(n)] for i in range(n)]
    y_bar = [[min(1.0, sum(float(labels[i, k] * labels[j, k]) for k in range(c))) for j in range(n)] for i in range(n)]
    intra = [[max(0.0, y_bar[i][j] - (1.0 if i == j else 0.0)) for j in range(n)] for i in range(n)]

    def row_normalise(w):
        out = []
        for row in w:
            total = sum(row)
            out.append([x / total if total > 0 else 0.0 for x in row])
        return out

    p_inter, p_intra = row_normalise(y_bar), row_normalise(intra)

    def mean_m(s, p):
        total = 0.0
        for i in range(n):
            log_z = _lse([kappa * s[i][k] for k in range(n)])
            total = total + sum(p[i][j] * (s[i][j] - log_z) for j in range(n))
        return total / n

    return (
        -mean_m(sims["vt"], p_inter)
        - mean_m(sims["tv"], p_inter)
        - gamma_s * (mean_m(sims["vv"], p_intra) + mean_m(sims["tt"], p_intra))
    )


# ---------------------------------------------------------------------------- helpers
def value_and_grads(fn, wrt: tuple[Tensor, ...], *args, **kwargs) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``fn(*wrt, *args, **kwargs)`` and its gradients w.r.t. (fresh leaf copies of) ``wrt``."""
    leaves = [x.detach().clone().requires_grad_(True) for x in wrt]
    loss = fn(*leaves, *args, **kwargs)
    return loss.detach(), torch.autograd.grad(loss, leaves)


def rel_error(a: Tensor, b: Tensor) -> float:
    """Largest absolute difference relative to the largest entry of ``b`` (in float64)."""
    a, b = a.detach().double(), b.detach().double()
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)
