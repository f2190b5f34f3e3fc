"""DSCMR's modality-invariance loss (eq. 4) against a plain loop."""
from __future__ import annotations

import pytest
import torch

from dscmr_references import modality_invariance as reference
from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import ModalityInvarianceLoss, modality_invariance_loss


def random_batch(n=6, d=4, c=3, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    text = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    labels = (torch.rand(n, c, generator=gen) < 0.4).to(dtype)
    return image, text, labels


@pytest.mark.parametrize("norm", ["frobenius", "rows"])
@pytest.mark.parametrize("seed", [0, 1])
def test_value_and_gradients_match_the_loop_reference_in_float64(norm, seed):
    image, text, labels = random_batch(seed=seed)
    ours_in = [image.clone().requires_grad_(True), text.clone().requires_grad_(True)]
    ref_in = [image.clone().requires_grad_(True), text.clone().requires_grad_(True)]
    value = modality_invariance_loss(*ours_in, labels, norm=norm)
    ref = reference(*ref_in, norm=norm)
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=0)
    value.backward()
    ref.backward()
    for ours, theirs in zip(ours_in, ref_in):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("norm", ["frobenius", "rows"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_every_accepted_precision_matches_the_float64_reference(norm, dtype):
    image, text, labels = random_batch(n=10, d=8, seed=2, dtype=dtype)
    image.requires_grad_(True)
    value = modality_invariance_loss(image, text, labels, norm=norm)
    ref = reference(image.double(), text.double(), norm=norm)
    assert value.dtype == torch.float32  # half precision is computed in float32
    torch.testing.assert_close(value.double(), ref, rtol=1e-6, atol=0)
    value.backward()
    assert image.grad.dtype == dtype and torch.isfinite(image.grad.float()).all()


def test_identical_pairs_have_a_zero_loss_and_gradient():
    image, _, labels = random_batch(seed=3)
    image.requires_grad_(True)
    text = image.detach().clone()
    text[0] += 1.0  # one pair differs: only its row has a gradient in "rows"
    for norm in ("frobenius", "rows"):
        image.grad = None
        modality_invariance_loss(image, text, labels, norm=norm).backward()
        assert torch.isfinite(image.grad).all() and image.grad[0].abs().sum() > 0
        assert torch.equal(image.grad[1:], torch.zeros_like(image.grad[1:]))
    image.grad = None
    value = modality_invariance_loss(image, image.detach().clone(), labels)
    value.backward()
    assert value.item() == 0.0 and torch.equal(image.grad, torch.zeros_like(image.grad))


def test_a_known_value():
    labels = torch.ones(2, 1)
    image = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    text = torch.zeros(2, 2)
    assert modality_invariance_loss(image, text, labels).item() == pytest.approx(5.0 / 2)
    assert modality_invariance_loss(image, text, labels, norm="rows").item() == pytest.approx(5.0 / 2)
    image[1] = torch.tensor([3.0, 4.0])
    assert modality_invariance_loss(image, text, labels).item() == pytest.approx(50 ** 0.5 / 2)
    assert modality_invariance_loss(image, text, labels, norm="rows").item() == pytest.approx(5.0)


def test_module_reads_the_embeddings():
    image, text, labels = random_batch(seed=5)
    output = type("Output", (), {"image_embedding": image, "text_embedding": text})()
    assert ModalityInvarianceLoss()(output, labels).item() == pytest.approx(reference(image, text).item(), rel=1e-12)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="rows"):
        modality_invariance_loss(image, text, labels[:2])
    with pytest.raises(DataError, match="differ in shape"):
        modality_invariance_loss(image, text[:, :3], labels)
    with pytest.raises(ConfigError, match="did you mean 'frobenius'"):
        ModalityInvarianceLoss(norm="frobenious")
    with pytest.raises(DataError, match="text_embedding"):
        ModalityInvarianceLoss()(type("Output", (), {"image_embedding": image})(), labels)
