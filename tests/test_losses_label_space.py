"""DSCMR's label-space discrimination loss (eq. 1) against a plain loop."""
from __future__ import annotations

import pytest
import torch

from dscmr_references import label_space as reference
from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import LabelSpaceLoss, classification_loss, label_space_loss


def random_batch(n=6, c=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = (torch.rand(n, c, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    text = (torch.rand(n, c, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    labels = (torch.rand(n, c, generator=gen) < 0.4).to(dtype)
    return image, text, labels


@pytest.mark.parametrize("norm", ["frobenius", "rows"])
@pytest.mark.parametrize("seed", [0, 1])
def test_value_and_gradients_match_the_loop_reference_in_float64(norm, seed):
    image, text, labels = random_batch(seed=seed)
    ours_in = [image.clone().requires_grad_(True), text.clone().requires_grad_(True)]
    ref_in = [image.clone().requires_grad_(True), text.clone().requires_grad_(True)]
    value = label_space_loss(*ours_in, labels, norm=norm)
    ref = reference(*ref_in, labels, norm=norm)
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=0)
    value.backward()
    ref.backward()
    for ours, theirs in zip(ours_in, ref_in):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("norm", ["frobenius", "rows"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_every_accepted_precision_matches_the_float64_reference(norm, dtype):
    image, text, labels = random_batch(n=12, c=7, seed=2, dtype=dtype)
    image.requires_grad_(True)
    value = label_space_loss(image, text, labels, norm=norm)
    ref = reference(image.double(), text.double(), labels.double(), norm=norm)
    assert value.dtype == torch.float32  # half precision is computed in float32
    torch.testing.assert_close(value.double(), ref, rtol=1e-6, atol=0)
    value.backward()
    assert image.grad.dtype == dtype and torch.isfinite(image.grad.float()).all()


def test_frobenius_is_not_the_mean_of_the_row_norms():
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scores = labels + torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # row errors 5 and 0
    assert label_space_loss(scores, labels, labels).item() == pytest.approx(5.0 / 2)            # ||D||_F / n
    assert label_space_loss(scores, labels, labels, norm="rows").item() == pytest.approx(5.0 / 2)
    scores = labels + torch.tensor([[3.0, 4.0], [3.0, 4.0]])
    assert label_space_loss(scores, labels, labels).item() == pytest.approx(50 ** 0.5 / 2)
    assert label_space_loss(scores, labels, labels, norm="rows").item() == pytest.approx(5.0)


def test_rows_is_the_classification_loss():
    image, text, labels = random_batch(seed=3)
    assert torch.equal(label_space_loss(image, text, labels, norm="rows"), classification_loss(image, text, labels))


def test_a_perfect_prediction_has_a_zero_gradient():
    _, _, labels = random_batch(seed=4)
    image = labels.clone().requires_grad_(True)
    text = labels.clone().requires_grad_(True)
    value = label_space_loss(image, text, labels)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(image.grad, torch.zeros_like(image))


def test_module_reads_the_label_scores():
    image, text, labels = random_batch(seed=5)
    output = type("Output", (), {"image_label_scores": image, "text_label_scores": text})()
    term = LabelSpaceLoss(norm="rows")
    assert term(output, labels).item() == pytest.approx(reference(image, text, labels, "rows").item(), rel=1e-12)
    assert "rows" in repr(term)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="rows"):
        label_space_loss(image, text, labels[:2])
    with pytest.raises(DataError, match="one column per label"):
        label_space_loss(image[:, :3], text, labels)
    with pytest.raises(DataError, match="0 or 1"):
        label_space_loss(image, text, labels * 3)
    with pytest.raises(ConfigError, match="did you mean 'rows'"):
        LabelSpaceLoss(norm="row")
    with pytest.raises(ConfigError, match="norm"):
        label_space_loss(image, text, labels, norm="l1")
    with pytest.raises(DataError, match="image_label_scores"):
        LabelSpaceLoss()(object(), labels)
