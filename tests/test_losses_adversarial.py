"""Adversarial loss (eq. 25) against a plain loop."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import AdversarialLoss, adversarial_loss


def cross_entropy(logits, target):
    n = logits.shape[0]
    total = 0.0
    for i in range(n):
        row = [float(v) for v in logits[i]]
        log_z = math.log(sum(math.exp(v) for v in row))
        total += log_z - row[target]
    return total / n


def reference(real_v, fake_v, fake_t, real_t, mu):
    return cross_entropy(real_v, 1) + cross_entropy(fake_v, 0) + mu * (cross_entropy(fake_t, 1) + cross_entropy(real_t, 0))


def random_logits(n=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 2, generator=gen, dtype=torch.float64) * 3 for _ in range(4)]


@pytest.mark.parametrize("mu", [1.0, 0.5, 0.0])
def test_matches_loop_reference(mu):
    logits = random_logits(seed=int(mu * 10))
    value = adversarial_loss(*logits, view_weight=mu).item()
    ref = reference(*logits, mu)
    assert abs(value - ref) / ref < 1e-6


def test_module_and_function_accept_the_model_output():
    logits = random_logits(seed=3)
    output = SimpleNamespace(
        image_real_logits=logits[0], image_fake_logits=logits[1], text_fake_logits=logits[2], text_real_logits=logits[3]
    )
    ref = reference(*logits, 2.0)
    assert AdversarialLoss(view_weight=2.0)(output, None).item() == pytest.approx(ref, rel=1e-6)
    assert adversarial_loss(output, view_weight=2.0).item() == pytest.approx(ref, rel=1e-6)


def test_bad_inputs_raise_one_clear_error():
    logits = random_logits()
    with pytest.raises(DataError, match=r"text_real_logits must be an \(n, 2\)"):
        adversarial_loss(*logits[:3], torch.zeros(5, 3))
    with pytest.raises(DataError, match="image_real_logits"):
        AdversarialLoss()(SimpleNamespace(), None)
    with pytest.raises(ConfigError, match="view_weight"):
        AdversarialLoss(view_weight=-1.0)
