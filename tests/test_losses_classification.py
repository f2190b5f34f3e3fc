"""Classification loss (eq. 24) against a plain loop."""
from __future__ import annotations

import math

import pytest
import torch

from gcnretrieval.errors import DataError
from gcnretrieval.losses import ClassificationLoss, classification_loss


def reference(image_scores, text_scores, labels):
    n, c = labels.shape
    total = 0.0
    for scores in (image_scores, text_scores):
        total += sum(math.sqrt(sum((float(scores[i, j]) - float(labels[i, j])) ** 2 for j in range(c))) for i in range(n)) / n
    return total


def random_batch(n=6, c=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(n, c, generator=gen, dtype=torch.float64) * 2 - 1
    text = torch.rand(n, c, generator=gen, dtype=torch.float64) * 2 - 1
    labels = (torch.rand(n, c, generator=gen) < 0.4).double()
    return image, text, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference(seed):
    image, text, labels = random_batch(seed=seed)
    value = classification_loss(image, text, labels).item()
    ref = reference(image, text, labels)
    assert abs(value - ref) / ref < 1e-6


def test_norm_is_not_squared():
    labels = torch.tensor([[1.0, 0.0]])
    scores = torch.tensor([[1.0, 2.0]])  # error vector (0, 2): norm 2, squared norm 4
    assert classification_loss(scores, scores, labels).item() == pytest.approx(4.0)


def test_zero_error_rows_have_a_zero_gradient():
    image, text, labels = random_batch(seed=3)
    image = image.clone()
    image[0] = labels[0]  # exact prediction: norm 0
    image.requires_grad_(True)
    classification_loss(image, text, labels).backward()
    assert torch.isfinite(image.grad).all()
    assert torch.equal(image.grad[0], torch.zeros_like(image.grad[0]))
    assert image.grad[1].abs().sum() > 0


def test_module_reads_the_label_scores():
    image, text, labels = random_batch(seed=4)
    output = type("Output", (), {"image_label_scores": image, "text_label_scores": text})()
    assert ClassificationLoss()(output, labels).item() == pytest.approx(reference(image, text, labels), rel=1e-6)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="rows"):
        classification_loss(image, text, labels[:2])
    with pytest.raises(DataError, match="one column per label"):
        classification_loss(image[:, :3], text, labels)
    with pytest.raises(DataError, match="0 or 1"):
        classification_loss(image, text, labels * 3)
    with pytest.raises(DataError, match="image_label_scores"):
        ClassificationLoss()(object(), labels)
