"""DSCMR's common-space discrimination loss (eq. 2) against a plain loop."""
from __future__ import annotations

import math

import pytest
import torch

from dscmr_references import common_space as reference
from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import CommonSpaceDiscriminationLoss, common_space_discrimination_loss, label_similarity


def random_batch(n=6, d=4, c=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    text = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    labels = (torch.rand(n, c, generator=gen) < 0.4).to(dtype)
    labels[0, :2] = labels[1, :2] = 1  # a pair sharing two labels: "shared" and "count" differ
    return image, text, labels


@pytest.mark.parametrize("kind", ["shared", "count"])
@pytest.mark.parametrize("seed", [0, 1])
def test_value_and_gradients_match_the_loop_reference_in_float64(kind, seed):
    image, text, labels = random_batch(seed=seed)
    ours_in = [image.clone().requires_grad_(True), text.clone().requires_grad_(True)]
    ref_in = [image.clone().requires_grad_(True), text.clone().requires_grad_(True)]
    value = common_space_discrimination_loss(*ours_in, labels, similarity=kind)
    ref = reference(*ref_in, labels, kind)
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=0)
    value.backward()
    ref.backward()
    for ours, theirs in zip(ours_in, ref_in):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-14)


def test_gradcheck():
    image, text, labels = random_batch(n=4, d=3, seed=3)
    image.requires_grad_(True)
    text.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u, v: common_space_discrimination_loss(u, v, labels), (image, text))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_every_accepted_precision_matches_the_float64_reference(dtype):
    image, text, labels = random_batch(n=10, d=8, seed=2, dtype=dtype)
    image.requires_grad_(True)
    value = common_space_discrimination_loss(image, text, labels)
    ref = reference(image.double(), text.double(), labels.double())
    assert value.dtype == torch.float32  # half precision is computed in float32
    torch.testing.assert_close(value.double(), ref, rtol=1e-6, atol=0)
    value.backward()
    assert image.grad.dtype == dtype and torch.isfinite(image.grad.float()).all()


def test_under_autocast_the_loss_is_computed_in_float32():
    image, text, labels = random_batch(n=10, d=8, seed=6, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = common_space_discrimination_loss(image, text, labels)
    torch.testing.assert_close(value.double(), reference(image.double(), text.double(), labels.double()),
                               rtol=1e-6, atol=0)


def test_the_similarities():
    labels = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert label_similarity(labels, labels).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert label_similarity(labels, labels, "count").tolist() == [[2, 2, 0], [2, 2, 0], [0, 0, 1]]


def test_a_known_value():
    # two orthogonal one-hot embeddings of different classes, each text equal to its image:
    # per block the four half-cosines are 1/2 (diagonal, S = 1) and 0 (off-diagonal, S = 0)
    image = torch.eye(2, dtype=torch.float64)
    labels = torch.eye(2, dtype=torch.float64)
    block = (2 * (math.log(1 + math.exp(0.5)) - 0.5) + 2 * math.log(2)) / 4
    assert common_space_discrimination_loss(image, image.clone(), labels).item() == pytest.approx(3 * block)


def test_module_reads_the_embeddings():
    image, text, labels = random_batch(seed=5)
    output = type("Output", (), {"image_embedding": image, "text_embedding": text})()
    term = CommonSpaceDiscriminationLoss(similarity="count")
    assert term(output, labels).item() == pytest.approx(reference(image, text, labels, "count").item(), rel=1e-12)
    assert "count" in repr(term)


def test_bad_inputs_raise_one_clear_error():
    image, text, labels = random_batch()
    with pytest.raises(DataError, match="rows"):
        common_space_discrimination_loss(image, text, labels[:2])
    with pytest.raises(DataError, match="differ in shape"):
        common_space_discrimination_loss(image, text[:, :3], labels)
    with pytest.raises(DataError, match="0 or 1"):
        common_space_discrimination_loss(image, text, labels * 3)
    with pytest.raises(ConfigError, match="did you mean 'shared'"):
        CommonSpaceDiscriminationLoss(similarity="share")
    with pytest.raises(DataError, match="image_embedding"):
        CommonSpaceDiscriminationLoss()(object(), labels)
