r"""Float32 linear layers on the CPU through oneDNN: a context, like ``torch.autocast``.

PyTorch computes a float32 ``F.linear`` on the CPU with its BLAS library (MKL in the
official wheels), which picks its kernels by CPU vendor: on AMD processors it runs its
AVX2 kernels even where the CPU has AVX-512. oneDNN, also inside PyTorch, picks them by
instruction set. Inside :func:`onednn_linear` every ``F.linear`` of a float32 CPU matrix
(``nn.Linear``, PyTorch Geometric's ``Linear`` inside ``GCNConv``, ``GATConv``, ... and any
layer a user adds) computes

.. math::
    \mathbf{y} = \mathbf{x}\mathbf{W}^\top + \mathbf{b},\qquad
    \frac{\partial L}{\partial \mathbf{x}} = \mathbf{g}\mathbf{W},\qquad
    \frac{\partial L}{\partial \mathbf{W}} = \mathbf{g}^\top\mathbf{x},\qquad
    \frac{\partial L}{\partial \mathbf{b}} = \textstyle\sum_i \mathbf{g}_i

with oneDNN's product (``torch.ops.mkldnn._linear_pointwise``; transposes are passed as
strides, not copied); the backward pass runs oneDNN too, wherever it is called from (a
backward that is itself differentiated, ``create_graph=True``, uses differentiable products;
``torch.func`` transforms work). Other calls are untouched: other devices, dtypes, ranks and
layouts, a bias that is not a vector, empty inputs, autocast, ``torch.compile``, a PyTorch
without oneDNN, or ``torch.backends.mkldnn.flags(enabled=False)``. Results agree
with ``F.linear`` to float32 rounding (the products sum in another order).
``FlopCounterMode`` counts the oneDNN product as it counts ``mm``: :math:`2\,n\,d_{in}\,d_{out}`.

The trainer enters the context for the forward pass of float32 training on the CPU, and
``embed_split`` and the retriever when they embed on the CPU, where
:func:`onednn_linear_preferred` says oneDNN is the faster library: a CPU with AVX-512 that is
not an Intel one, with MKL as PyTorch's BLAS (an AMD EPYC: oneDNN 2-3x MKL at the model's
shapes). On Intel CPUs MKL runs its own AVX-512 kernels and was the faster one (an Intel
Xeon: 5-15 % more samples per second at batch 100, 0-17 % at batch 2,048;
``benchmarks/RESULTS.md``). It is never set process-wide, and not entered elsewhere: every
torch call inside the context pays about 1 µs of Python (some 840 calls in a forward pass
of the demo model), which a GPU step would notice.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import flop_registry, register_flop_formula

from gcnretrieval.cpu import cpuinfo_text, parse_cpuinfo

__all__ = ["OneDNNLinearMode", "cpu_vendor_and_avx512", "onednn_linear", "onednn_linear_available",
           "onednn_linear_preferred", "use_onednn_linear"]


def onednn_linear_available() -> bool:
    """Whether this PyTorch has oneDNN's linear kernel and ``torch.backends.mkldnn`` is enabled."""
    return (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def cpu_vendor_and_avx512(cpuinfo: str) -> tuple[str, bool]:
    """``(vendor_id, whether the flags list avx512f)`` of the first processor in ``/proc/cpuinfo`` text."""
    fields = parse_cpuinfo(cpuinfo)
    return fields.get("vendor_id", ""), "avx512f" in fields.get("flags", "").split()


@functools.cache
def _this_cpu() -> tuple[str, bool]:
    return cpu_vendor_and_avx512(cpuinfo_text())  # ("", False) where there is no /proc/cpuinfo


def onednn_linear_preferred() -> bool:
    """Whether float32 CPU linear layers run faster through oneDNN than through PyTorch's BLAS here:
    oneDNN is available, the BLAS is MKL, and the CPU has AVX-512 but is not an Intel one (MKL then
    runs its AVX2 kernels, oneDNN its AVX-512 ones). The answer is fixed per machine, so a run's
    summation order does not depend on a timing."""
    vendor, avx512 = _this_cpu()
    return (onednn_linear_available() and torch.backends.mkl.is_available() and avx512
            and vendor not in ("", "GenuineIntel"))


def use_onednn_linear(device: torch.device | str) -> bool:
    """Whether float32 work on ``device`` enters :func:`onednn_linear`: on the CPU, where it is preferred."""
    return torch.device(device).type == "cpu" and onednn_linear_preferred()


def _product(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ b.T (+ bias)`` by oneDNN; ``a`` and ``b`` may be transposed views."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


if hasattr(torch.ops.mkldnn, "_linear_pointwise") and torch.ops.mkldnn._linear_pointwise not in flop_registry:
    @register_flop_formula(torch.ops.mkldnn._linear_pointwise)
    def _product_flops(a_shape: torch.Size, *rest: Any, **kwargs: Any) -> int:
        # default overload: (input, weight, bias, attr, scalars, algorithm); binary: (input, other, weight, bias, attr)
        weight_shape = rest[1] if len(rest) == 4 else rest[0]
        return 2 * math.prod(a_shape[:-1]) * a_shape[-1] * weight_shape[0]


class _OneDNNLinearFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _product(x, weight, bias)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor | None], output: Tensor) -> None:
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        # a backward that is itself differentiated (create_graph) uses differentiable products
        product = _product if not torch.is_grad_enabled() else (lambda a, b: a @ b.t())
        grad = grad.contiguous()
        grad_x = product(grad, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = product(grad.t(), x.t()) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def _eligible(x: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    """A float32 CPU matrix times a weight matrix with a plain bias vector (or none), no empty dimension."""
    return (isinstance(x, Tensor) and isinstance(weight, Tensor) and x.dim() == 2 and weight.dim() == 2
            and x.layout == weight.layout == torch.strided and x.device.type == "cpu"
            and x.dtype == weight.dtype == torch.float32 and x.numel() > 0 and weight.numel() > 0
            and (bias is None or (isinstance(bias, Tensor) and bias.dtype == torch.float32
                                  and bias.shape == (weight.shape[0],)))
            and not torch.is_autocast_enabled("cpu") and torch.backends.mkldnn.enabled)


class OneDNNLinearMode(TorchFunctionMode):
    """Routes eligible ``F.linear`` calls to oneDNN (see the module docstring); use :func:`onednn_linear`."""

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear and len(args) >= 2:
            x, weight = args[:2]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if _eligible(x, weight, bias) and not torch.compiler.is_compiling():
                return _OneDNNLinearFunction.apply(x.contiguous(), weight, bias)
        return func(*args, **kwargs)


@contextlib.contextmanager
def onednn_linear(enabled: bool = True) -> Iterator[None]:
    """Within the block, float32 CPU ``F.linear`` calls run through oneDNN (where it is available)."""
    if not (enabled and onednn_linear_available()):
        yield
        return
    with OneDNNLinearMode():
        yield
