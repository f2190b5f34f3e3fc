r"""Gradient reversal (Ganin & Lempitsky, ICML 2015)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the incoming gradient times ``-coefficient`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output * (-ctx.coefficient), None


def reverse_gradient(x: Tensor, coefficient: float = 1.0) -> Tensor:
    r"""Return ``x`` unchanged; gradients flowing back through it are multiplied by
    :math:`-\mathrm{coefficient}`.

    Args:
        x (torch.Tensor): any tensor.
        coefficient (float, optional): reversal strength :math:`\lambda`.
            (default: :obj:`1.0`)
    """
    return _ReverseGradient.apply(x, float(coefficient))


class GradientReversal(nn.Module):
    r"""The gradient reversal layer

    .. math::
        R(\mathbf{x}) = \mathbf{x}, \qquad
        \frac{\partial R}{\partial \mathbf{x}} = -\lambda \mathbf{I}

    Placed in front of a discriminator, it lets a single optimizer step train the
    discriminator to *minimise* its loss while everything upstream of the layer is
    pushed to *maximise* it. The coefficient :math:`\lambda` is a plain, non-trainable
    Python float: it needs no device, keeps full precision in any dtype, and is not
    part of ``state_dict()`` (a schedule is set by the trainer, not restored from a
    checkpoint). Change it with :meth:`set_coefficient`.

    Args:
        coefficient (float, optional): :math:`\lambda`. (default: :obj:`1.0`)

    Shapes:
        - **input:** any shape
        - **output:** same as input
    """

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = float(coefficient)

    def set_coefficient(self, coefficient: float) -> None:
        """Set :math:`\\lambda` (e.g. from a warm-up schedule)."""
        self.coefficient = float(coefficient)

    def reset_parameters(self) -> None:
        """No trainable parameters; present for a uniform interface."""

    def forward(self, x: Tensor) -> Tensor:
        return reverse_gradient(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient:g}"
