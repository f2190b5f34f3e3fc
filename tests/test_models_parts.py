"""Projectors, generators, discriminators and the gradient reversal layer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gcnretrieval.models import (
    Discriminator,
    Generator,
    GradientReversal,
    Projector,
    reverse_gradient,
    tapered_widths,
)


def layer_types(module: nn.Module) -> list[type]:
    return [type(m) for m in module.modules() if not list(m.children())]


@pytest.mark.parametrize("coefficient", [1.0, 0.3, 0.0])
def test_gradient_reversal_identity_forward_negated_backward(coefficient):
    torch.manual_seed(0)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64)
    grl = GradientReversal(coefficient).double()
    y = grl(x)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    # d/dx sum(w * x) = w, reversed and scaled
    torch.testing.assert_close(x.grad, -coefficient * w)


def test_gradient_reversal_function_and_coefficient_is_not_trainable():
    x = torch.ones(3, requires_grad=True)
    reverse_gradient(x, 2.0).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -2.0))

    grl = GradientReversal(0.5)
    assert list(grl.parameters()) == [] and list(grl.buffers()) == []
    assert grl.state_dict() == {}
    grl.set_coefficient(0.25)
    x = torch.ones(2, requires_grad=True)
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.full((2,), -0.25))
    assert "0.25" in repr(grl)


@pytest.mark.parametrize("num_layers", [1, 3])
def test_projector_structure_and_shape(num_layers):
    torch.manual_seed(0)
    proj = Projector(12, 8, num_layers=num_layers)
    expected = [nn.BatchNorm1d] + [nn.Linear] * num_layers + [nn.ReLU]
    assert layer_types(proj) == expected
    assert proj.lins[0].in_features == 12
    assert all(lin.out_features == 8 for lin in proj.lins)
    out = proj(torch.randn(5, 12))
    assert out.shape == (5, 8)
    assert bool((out >= 0).all())


def test_projector_matches_written_out_layers():
    torch.manual_seed(0)
    proj = Projector(6, 4, num_layers=2).eval()
    x = torch.randn(3, 6)
    bn = proj.norm
    h = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    h = torch.relu(h @ proj.lins[0].weight.t() + proj.lins[0].bias)
    h = torch.relu(h @ proj.lins[1].weight.t() + proj.lins[1].bias)
    torch.testing.assert_close(proj(x), h)


def test_projector_without_batch_norm_is_linear_relu():
    torch.manual_seed(0)
    proj = Projector(6, 4, batch_norm=False)
    assert layer_types(proj) == [nn.Identity, nn.Linear, nn.ReLU]
    assert "batch_norm=False" in repr(proj)
    x = torch.randn(3, 6, dtype=torch.float64)
    proj = proj.double()
    expected = [[max(0.0, sum(float(proj.lins[0].weight[r, c]) * float(x[i, c]) for c in range(6))
                     + float(proj.lins[0].bias[r])) for r in range(4)] for i in range(3)]
    torch.testing.assert_close(proj(x), torch.tensor(expected, dtype=torch.float64))
    proj.reset_parameters()  # nothing to reset in the identity


def test_projector_rejects_zero_layers():
    with pytest.raises(ValueError, match="num_layers"):
        Projector(4, 4, num_layers=0)


def test_generators_use_the_method_activations():
    torch.manual_seed(0)
    g_vt = Generator(8, 5, 7, negative_slope=0.2).eval()
    g_tv = Generator(8, 9, 11, negative_slope=0.0).eval()
    assert layer_types(g_vt) == [nn.BatchNorm1d, nn.Linear, nn.Linear, nn.LeakyReLU]
    assert layer_types(g_tv) == [nn.BatchNorm1d, nn.Linear, nn.Linear, nn.ReLU]
    assert (g_vt.lin1.out_features, g_vt.lin2.out_features) == (5, 7)
    x = torch.randn(6, 8)
    out = g_vt(x)
    assert out.shape == (6, 7)
    # LeakyReLU(0.2) keeps negative outputs (scaled); ReLU does not
    bn = g_vt.norm
    h = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    h = torch.nn.functional.leaky_relu(g_vt.lin1(h), 0.2)
    torch.testing.assert_close(out, torch.nn.functional.leaky_relu(g_vt.lin2(h), 0.2))
    assert bool((g_tv(x) >= 0).all())


@pytest.mark.parametrize("d_t, widths", [(1386, (346, 86)), (64, (16, 4)), (10, (2, 1)), (3, (1, 1))])
def test_tapered_widths_floor_at_one(d_t, widths):
    assert tapered_widths(d_t) == widths


def test_discriminator_structure_and_gradients():
    torch.manual_seed(0)
    disc = Discriminator(10, tapered_widths(10), grl_coefficient=0.5)
    assert [lin.out_features for lin in disc.lins] == [2, 1, 2]
    assert isinstance(disc.grl, GradientReversal)
    x = torch.randn(4, 10, requires_grad=True)
    logits = disc(x)
    assert logits.shape == (4, 2)
    # the same layers without the reversal layer
    ref = torch.nn.Sequential(disc.norm, disc.lins[0], nn.ReLU(), disc.lins[1], nn.ReLU(), disc.lins[2])
    x_ref = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(logits, ref(x_ref))
    w = torch.randn(4, 2)
    (logits * w).sum().backward()
    (ref(x_ref) * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * x_ref.grad)


def test_discriminator_needs_a_hidden_layer():
    with pytest.raises(ValueError, match="hidden_channels"):
        Discriminator(4, ())
