"""Soft contrastive loss, fused kernel and op-by-op reference path, against a plain-loop
reference written from the method (float64)."""
from __future__ import annotations

import pytest
import torch
from loss_references import soft_contrastive as reference

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import KAPPA, SoftContrastiveLoss, soft_contrastive_loss


def random_batch(n: int, d: int = 6, c: int = 4, density: float = 0.35, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(n, d, generator=gen, dtype=torch.float64)
    txt = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = (torch.rand(n, c, generator=gen) < density).double()
    return img, txt, labels


def _value_and_grads(fn, img, txt, labels, **kwargs):
    img = img.clone().requires_grad_(True)
    txt = txt.clone().requires_grad_(True)
    loss = fn(img, txt, labels, **kwargs)
    grads = torch.autograd.grad(loss, (img, txt))
    return loss.detach(), grads


def _rel(a, b):
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)


def test_kappa_is_the_published_constant():
    assert KAPPA == 1.06


#: float64 against the loop reference; measured <= 1e-14 (the single exponent shift
#: kappa / tau of the fused kernel rounds at 1e-16 * kappa / tau).
TOL64 = 1e-12


# tau 0.22, 0.2 and 1 take the kernel's one exponent shift (2 kappa / tau <= 80), 0.02 its row maxima
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tau,gamma_s", [(0.22, 0.14), (0.20, 0.5), (1.0, 0.0), (0.02, 0.3)])
def test_matches_loop_reference(seed, tau, gamma_s, fused):
    img, txt, labels = random_batch(7, seed=seed)
    value, grads = _value_and_grads(
        soft_contrastive_loss, img, txt, labels, temperature=tau, intra_weight=gamma_s, fused=fused
    )
    ref, ref_grads = _value_and_grads(reference, img, txt, labels, tau=tau, gamma_s=gamma_s)
    assert _rel(value, ref) < TOL64
    for grad, ref_grad in zip(grads, ref_grads):
        assert _rel(grad, ref_grad) < TOL64


@pytest.mark.parametrize("fused", [True, False])
def test_rows_without_intra_positive_and_without_labels(fused):
    img, txt, _ = random_batch(5, c=4, seed=3)
    labels = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.float64
    )  # row 2: no other sample shares its label; row 3: no label at all
    value, grads = _value_and_grads(soft_contrastive_loss, img, txt, labels, fused=fused)
    ref, ref_grads = _value_and_grads(reference, img, txt, labels)
    assert _rel(value, ref) < TOL64
    assert all(_rel(g, r) < TOL64 for g, r in zip(grads, ref_grads))


@pytest.mark.parametrize("fused", [True, False])
def test_no_positive_pairs_at_all(fused):
    img, txt, _ = random_batch(4, seed=4)
    labels = torch.eye(4, dtype=torch.float64)  # only the inter-modal self-pairs are positive
    assert _rel(soft_contrastive_loss(img, txt, labels, fused=fused), reference(img, txt, labels)) < TOL64


@pytest.mark.parametrize("fused", [True, False])
def test_no_negative_pairs_at_all(fused):
    img, txt, _ = random_batch(4, seed=5)
    labels = torch.ones(4, 3, dtype=torch.float64)
    assert _rel(soft_contrastive_loss(img, txt, labels, fused=fused), reference(img, txt, labels)) < TOL64


@pytest.mark.parametrize("fused", [True, False])
def test_batch_of_one_is_finite_and_matches_reference(fused):
    img, txt, labels = random_batch(1, seed=6)
    labels[0, 0] = 1.0
    value = soft_contrastive_loss(img, txt, labels, fused=fused)
    assert torch.isfinite(value)
    assert _rel(value, reference(img, txt, labels)) < TOL64


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm", [1e4, 1e-6])
def test_finite_at_extreme_norms(norm, fused):
    gen = torch.Generator().manual_seed(7)
    img = torch.randn(16, 32, generator=gen)
    txt = torch.randn(16, 32, generator=gen)
    img = (img / img.norm(dim=1, keepdim=True) * norm).requires_grad_(True)
    txt = (txt / txt.norm(dim=1, keepdim=True) * norm).requires_grad_(True)
    labels = (torch.rand(16, 5, generator=gen) < 0.3).float()
    loss = soft_contrastive_loss(img, txt, labels, temperature=0.01, fused=fused)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(img.grad).all() and torch.isfinite(txt.grad).all()


@pytest.mark.parametrize("fused", [True, False])
def test_module_reads_the_embeddings(fused):
    img, txt, labels = random_batch(6, seed=8)
    output = type("Output", (), {"image_embedding": img, "text_embedding": txt})()
    module = SoftContrastiveLoss(temperature=0.3, intra_weight=0.2, fused=fused)
    assert _rel(module(output, labels), reference(img, txt, labels, tau=0.3, gamma_s=0.2)) < TOL64


def test_bad_inputs_raise_one_clear_error():
    img, txt, labels = random_batch(5)
    with pytest.raises(DataError, match="rows"):
        soft_contrastive_loss(img, txt, labels[:3])
    with pytest.raises(DataError, match="differ in shape"):
        soft_contrastive_loss(img, txt[:4], labels)
    with pytest.raises(DataError, match="0 or 1"):
        soft_contrastive_loss(img, txt, labels - 0.5)
    with pytest.raises(ConfigError, match="temperature"):
        soft_contrastive_loss(img, txt, labels, temperature=0.0)
    with pytest.raises(ConfigError, match="temperature"):
        SoftContrastiveLoss(temperature=-1.0)
    with pytest.raises(ConfigError, match="intra_weight"):
        SoftContrastiveLoss(intra_weight=-0.1)
