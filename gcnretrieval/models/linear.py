r"""A drop-in ``nn.Linear`` whose float32 products on the CPU run through oneDNN.

PyTorch computes a float32 ``nn.Linear`` on the CPU with its BLAS library (MKL in the
official wheels). MKL picks its kernels by CPU vendor: on AMD processors it runs its
AVX2 kernels even where the CPU has AVX-512, while oneDNN (also shipped inside PyTorch)
picks them by instruction set. :class:`Linear` computes

.. math::
    \mathbf{y} = \mathbf{x}\mathbf{W}^\top + \mathbf{b},\qquad
    \frac{\partial L}{\partial \mathbf{x}} = \mathbf{g}\mathbf{W},\qquad
    \frac{\partial L}{\partial \mathbf{W}} = \mathbf{g}^\top\mathbf{x},\qquad
    \frac{\partial L}{\partial \mathbf{b}} = \textstyle\sum_i \mathbf{g}_i

with oneDNN's matrix product (``torch.ops.mkldnn._linear_pointwise``, transposes passed
as strides, no copies) for float32 CPU tensors outside autocast, and exactly like
``nn.Linear`` everywhere else (other devices and dtypes, autocast, ``torch.compile``,
a PyTorch without oneDNN, or ``torch.backends.mkldnn.flags(enabled=False)``). Parameters,
initialisation and ``state_dict`` are those of ``nn.Linear``; the results agree with it
to float32 rounding (the products sum in another order). ``FlopCounterMode`` counts the
oneDNN product as it counts ``mm``: :math:`2\,n\,d_{in}\,d_{out}`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.utils.flop_counter import flop_registry, register_flop_formula

__all__ = ["Linear", "onednn_linear_available"]


def onednn_linear_available() -> bool:
    """Whether this PyTorch has oneDNN's linear kernel and ``torch.backends.mkldnn`` is enabled."""
    return (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def _takes_onednn_path(x: Tensor, weight: Tensor) -> bool:
    return (x.dim() == 2 and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
            and onednn_linear_available())


def _product(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """:math:`\\mathbf{a}\\mathbf{b}^\\top (+ \\mathbf{b}_{ias})` by oneDNN; ``a`` and ``b`` may be strided views."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


if hasattr(torch.ops.mkldnn, "_linear_pointwise") and torch.ops.mkldnn._linear_pointwise not in flop_registry:
    @register_flop_formula(torch.ops.mkldnn._linear_pointwise)
    def _product_flops(a_shape: torch.Size, b_shape: torch.Size, *args: object, **kwargs: object) -> int:
        return 2 * math.prod(a_shape[:-1]) * a_shape[-1] * b_shape[0]


class _OneDNNLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x.contiguous(), weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = _product(grad, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = _product(grad.t(), x.t()) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


class Linear(nn.Linear):
    r"""``nn.Linear`` (same arguments, parameters and initialisation) with oneDNN's float32
    CPU product, see the module docstring.

    Shapes:
        - **input:** :math:`(n, d_{in})`; other ranks take ``nn.Linear``'s path
        - **output:** :math:`(n, d_{out})`
    """

    def forward(self, x: Tensor) -> Tensor:
        if _takes_onednn_path(x, self.weight):
            return _OneDNNLinearFunction.apply(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)
