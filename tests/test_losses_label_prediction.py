"""ACMR's label prediction loss (eq. 1, multi-label form) against a plain loop."""
from __future__ import annotations

import math

import pytest
import torch
from loss_references import rel_error, value_and_grads

from gcnretrieval.errors import DataError
from gcnretrieval.losses import LabelPredictionLoss, label_prediction_loss


def _log_softmax(row, c):
    top = max(float(row[k].detach()) for k in range(len(row)))
    log_norm = top + torch.log(sum(torch.exp(row[k] - top) for k in range(len(row))))
    return row[c] - log_norm


def reference(image_logits, text_logits, labels):
    """-(1/n) sum_i sum_c q_ic (log p_c(v_i) + log p_c(t_i)), q_i = y_i / |y_i|, one scalar at a time."""
    n, num_labels = labels.shape
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        count = sum(float(labels[i, c]) for c in range(num_labels))
        for c in range(num_labels):
            if labels[i, c] == 1:
                total = total - (_log_softmax(image_logits[i], c) + _log_softmax(text_logits[i], c)) / count
    return total / n


def random_batch(n=6, c=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = (torch.randn(n, c, generator=gen, dtype=torch.float64) * 2).to(dtype)
    text = (torch.randn(n, c, generator=gen, dtype=torch.float64) * 2).to(dtype)
    labels = (torch.rand(n, c, generator=gen) < 0.4).double()
    labels[0] = 0  # no labels: adds nothing
    labels[1] = 0
    labels[1, 2] = 1  # exactly one label: the paper's single-label case
    return image, text, labels


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_loop_reference_float64(seed):
    image, text, labels = random_batch(seed=seed)
    value, grads = value_and_grads(label_prediction_loss, (image, text), labels)
    ref_value, ref_grads = value_and_grads(reference, (image, text), labels)
    assert abs(value.item() - ref_value.item()) <= 1e-12 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert rel_error(g, r) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precisions_match_the_float64_reference(dtype):
    image, text, labels = random_batch(seed=4, dtype=dtype)
    value, grads = value_and_grads(label_prediction_loss, (image, text), labels.to(dtype))
    assert value.dtype == torch.float32
    ref_value, ref_grads = value_and_grads(reference, (image.double(), text.double()), labels)
    assert abs(value.item() - ref_value.item()) <= 1e-5 * abs(ref_value.item())
    for g, r in zip(grads, ref_grads):
        assert g.dtype == dtype
        assert rel_error(g, r) < torch.finfo(dtype).eps + 1e-5


def test_under_autocast_the_loss_runs_in_float32():
    image, text, labels = random_batch(seed=5, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = label_prediction_loss(image, text, labels.float())
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(image.double(), text.double(), labels).item(), rel=1e-6)


def test_single_label_rows_give_the_papers_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    labels = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    expected = -2 * (0.0 - math.log(math.exp(2.0) + 1.0 + math.exp(-1.0)))
    assert label_prediction_loss(logits, logits, labels).item() == pytest.approx(expected, rel=1e-12)


def test_gradcheck():
    image, text, labels = random_batch(n=4, c=3, seed=6)
    image.requires_grad_(True)
    text.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: label_prediction_loss(a, b, labels), (image, text))


def test_module_reads_the_label_logits():
    image, text, labels = random_batch(seed=7)
    output = type("Output", (), {"image_label_logits": image, "text_label_logits": text})()
    assert LabelPredictionLoss()(output, labels).item() == pytest.approx(reference(image, text, labels).item(), rel=1e-12)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="rows"):
        label_prediction_loss(image, text, labels[:2])
    with pytest.raises(DataError, match="one output per label"):
        label_prediction_loss(image[:, :3], text, labels)
    with pytest.raises(DataError, match="0 or 1"):
        label_prediction_loss(image, text, labels * 2)
    with pytest.raises(DataError, match="image_label_logits"):
        LabelPredictionLoss()(object(), labels)
