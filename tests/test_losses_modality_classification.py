"""ACMR's modality classification loss (eq. 8) against a plain loop."""
from __future__ import annotations

import math

import pytest
import torch
from loss_references import rel_error, value_and_grads

from gcnretrieval.errors import DataError
from gcnretrieval.losses import ModalityClassificationLoss, modality_classification_loss
from gcnretrieval.models.grl import reverse_gradient


def _log_prob(row, c):
    """log softmax(row)_c of a two-logit row."""
    other = 1 - c
    return -torch.log1p(torch.exp(row[other] - row[c]))


def reference(image_logits, text_logits):
    """-(1/n) sum_i (log D(v_i) + log(1 - D(t_i))), D = P(image) = softmax(logits)_1."""
    n_v, n_t = image_logits.size(0), text_logits.size(0)
    image_term = sum(-_log_prob(image_logits[i], 1) for i in range(n_v)) / n_v
    text_term = sum(-_log_prob(text_logits[i], 0) for i in range(n_t)) / n_t
    return image_term + text_term


def random_logits(n=6, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return tuple((torch.randn(n, 2, generator=gen, dtype=torch.float64) * 2).to(dtype) for _ in range(2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference_float64(seed):
    image, text = random_logits(seed=seed)
    value, grads = value_and_grads(modality_classification_loss, (image, text))
    ref_value, ref_grads = value_and_grads(reference, (image, text))
    assert abs(value.item() - ref_value.item()) <= 1e-12 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert rel_error(g, r) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precisions_match_the_float64_reference(dtype):
    image, text = random_logits(seed=3, dtype=dtype)
    value, grads = value_and_grads(modality_classification_loss, (image, text))
    assert value.dtype == torch.float32
    ref_value, ref_grads = value_and_grads(reference, (image.double(), text.double()))
    assert abs(value.item() - ref_value.item()) <= 1e-5 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert g.dtype == dtype
        assert rel_error(g, r) < torch.finfo(dtype).eps + 1e-5


def test_image_is_class_one():
    confident_image = torch.tensor([[-20.0, 20.0]], dtype=torch.float64)  # P(image) ~ 1
    confident_text = torch.tensor([[20.0, -20.0]], dtype=torch.float64)
    assert modality_classification_loss(confident_image, confident_text).item() < 1e-15
    assert modality_classification_loss(confident_text, confident_image).item() == pytest.approx(80.0, rel=1e-12)
    even = torch.zeros(3, 2, dtype=torch.float64)
    assert modality_classification_loss(even, even[:2]).item() == pytest.approx(2 * math.log(2), rel=1e-12)


def test_behind_gradient_reversal_the_projector_ascends_what_the_classifier_descends():
    image, text = random_logits(seed=4)
    features = image.clone().requires_grad_(True)
    weight = torch.eye(2, dtype=torch.float64, requires_grad=True)
    loss = modality_classification_loss(reverse_gradient(features) @ weight, text)
    loss.backward()
    _, (ref_grad,) = value_and_grads(lambda x: reference(x @ weight.detach(), text), (image,))
    torch.testing.assert_close(features.grad, -ref_grad)


def test_module_reads_the_modality_logits():
    image, text = random_logits(seed=5)
    output = type("Output", (), {"image_modality_logits": image, "text_modality_logits": text})()
    assert ModalityClassificationLoss()(output).item() == pytest.approx(reference(image, text).item(), rel=1e-12)


def test_bad_inputs_raise_one_clear_error():
    image, text = random_logits()
    with pytest.raises(DataError, match=r"image modality logits must be an \(n, 2\)"):
        modality_classification_loss(image[:, :1], text)
    with pytest.raises(DataError, match="text modality logits"):
        modality_classification_loss(image, text.long())
    with pytest.raises(DataError, match="image_modality_logits"):
        ModalityClassificationLoss()(object())
