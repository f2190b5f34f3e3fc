r"""Fused kernels for the pairwise losses, each with its gradient written out.

The Circle and soft contrastive losses are functions of :math:`n \times n` cosine
similarity matrices. Written op by op, autograd keeps about ten :math:`n \times n`
intermediates per loss and makes as many passes over them in each direction; at batch
2,048 that elementwise work cost more than the products that build the matrices. Here
each loss is one :class:`torch.autograd.Function`: the forward pass updates its buffers in
place and keeps only the gradient (one :math:`n \times n` tensor per similarity matrix);
the backward pass scales it. The similarity matrices themselves are built by
:func:`cosine_similarities` once per batch and shared by both losses.

The formulas are those of :func:`gcnretrieval.losses.circle_loss` and
:func:`gcnretrieval.losses.soft_contrastive_loss`; ``tests/test_losses_*`` check the
values and gradients against plain-loop references, against the op-by-op reference path
(``fused=False``) and with :func:`torch.autograd.gradcheck`.

**Precision.** The kernels compute in float32 or float64 only. ``float16`` and
``bfloat16`` inputs are upcast to float32 (:func:`upcast`), and every kernel runs its
forward and backward pass with autocast turned off on its inputs' device
(:func:`autocast_off`), so under :func:`torch.autocast` the products and exponentials stay
in float32 too. A loss from half-precision inputs is a float32 scalar; the gradients flow
back to the inputs in their own dtype. The exponent window :data:`EXP_RANGE` needs that:
float16's smallest normal number is :math:`e^{-9.7}`; computed in float16, the Circle loss
at :math:`\gamma = 16` would come out as 0.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

NORM_EPS = 1e-12  # guards the L2 normalisation of all-zero rows
REDUCTIONS = ("global", "per_anchor")
#: Floating-point dtypes the pairwise losses never compute in: they are upcast to float32.
HALF_DTYPES = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the pairwise losses compute in for inputs of ``dtype``: float32 for the
    half types (:data:`HALF_DTYPES`), ``dtype`` itself otherwise."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def upcast(tensor: Tensor) -> Tensor:
    """``tensor`` in :func:`compute_dtype` of its dtype (itself, no copy, if already there).

    The cast is differentiable: gradients reach a half-precision input in its own dtype.
    """
    return tensor.to(torch.float32) if tensor.dtype in HALF_DTYPES else tensor


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """A context with :func:`torch.autocast` disabled on ``device``'s type.

    Where autocast is not enabled (or the device type has none) it is a no-op context,
    which costs a tenth of entering ``torch.autocast(enabled=False)``.
    """
    if torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


_Method = TypeVar("_Method", bound=Callable)


def _full_precision(method: _Method) -> _Method:
    """Run a Function's ``forward`` or ``backward`` with autocast off on the device of its
    tensor arguments and with half-precision tensor arguments upcast (:func:`upcast`).

    Backward needs it too: called inside an autocast region, it would otherwise run its
    products in the autocast dtype. Gradients returned in float32 for a half-precision
    input are cast back to the input's dtype by autograd.
    """

    @functools.wraps(method)
    def wrapper(ctx: FunctionCtx, *args):
        args = [upcast(a) if isinstance(a, Tensor) else a for a in args]
        device_type = args[0].device.type  # every kernel's first argument is a tensor
        if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return method(ctx, *args)
        return method(ctx, *args)  # the common case, kept cheap: nothing to switch off

    return wrapper  # type: ignore[return-value]


class PairwiseInputs(NamedTuple):
    r"""Cosine similarities of a batch and its label masks, shared by the pairwise losses.

    ``image_image`` and ``text_text`` are symmetric. The masks are 0/1 tensors in the
    similarities' dtype, all symmetric: ``overlap`` is :math:`\bar{Y} = \min(1, YY^\top)`
    (diagonal included), ``positive`` is :math:`\bar{Y}` without its diagonal (pairs
    :math:`i \ne j` sharing a label) and ``negative`` marks the pairs :math:`i \ne j` that
    share none.
    """

    image_image: Tensor
    text_text: Tensor
    image_text: Tensor
    overlap: Tensor
    positive: Tensor
    negative: Tensor


class _SymmetricGram(torch.autograd.Function):
    """:math:`G = UU^\\top` with the backward :math:`\\partial U = (\\partial G + \\partial G^\\top)U`.

    One product in the backward pass instead of the two that autograd runs for ``u @ u.t()``.
    """

    @staticmethod
    @_full_precision
    def forward(ctx: FunctionCtx, unit: Tensor) -> Tensor:
        ctx.save_for_backward(unit)
        return unit @ unit.t()

    @staticmethod
    @once_differentiable
    @_full_precision
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        (unit,) = ctx.saved_tensors
        # a contiguous copy of the transpose, then a plain add: faster than adding a strided view
        return grad.t().contiguous().add_(grad) @ unit


def symmetric_gram(unit: Tensor) -> Tensor:
    """:math:`UU^\\top` for a 2-D tensor, with a one-product backward pass (in float32 for
    half-precision inputs, autocast off)."""
    return _SymmetricGram.apply(unit)


class _CrossGram(torch.autograd.Function):
    """:math:`G = AB^\\top` with the backward :math:`(\\partial G\\, B, \\partial G^\\top A)`, both
    passes in full precision (the product autograd records for ``a @ b.t()`` would run its
    backward in the autocast dtype when called inside an autocast region)."""

    @staticmethod
    @_full_precision
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return a @ b.t()

    @staticmethod
    @once_differentiable
    @_full_precision
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        grad_a = grad @ b if ctx.needs_input_grad[0] else None
        grad_b = grad.t() @ a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def cross_gram(a: Tensor, b: Tensor) -> Tensor:
    """:math:`AB^\\top` for two 2-D tensors (in float32 for half-precision inputs, autocast off)."""
    return _CrossGram.apply(a, b)


def label_overlap(labels_a: Tensor, labels_b: Tensor, dtype: torch.dtype) -> Tensor:
    r""":math:`\min(1, Y_a Y_b^\top)` as 0/1 values of ``dtype``: 1 where two rows share a label."""
    shared = labels_a.to(dtype) @ labels_b.to(dtype).t()
    return shared.clamp_(max=1.0)


def pair_masks(overlap: Tensor) -> tuple[Tensor, Tensor]:
    r"""``(positive, negative)`` 0/1 masks of the pairs :math:`i \ne j` that do / do not share a label."""
    positive = overlap.clone()
    positive.diagonal().zero_()
    negative = 1.0 - overlap
    negative.diagonal().zero_()
    return positive, negative


def cosine_similarities(image: Tensor, text: Tensor, labels: Tensor) -> PairwiseInputs:
    """Row-normalise both modalities and build every matrix the pairwise losses read.

    The matrices are in :func:`compute_dtype` of the embeddings (float32 for float16 and
    bfloat16), built with autocast off.
    """
    image, text = upcast(image), upcast(text)
    with autocast_off(image.device):
        v = F.normalize(image, p=2.0, dim=1, eps=NORM_EPS)
        t = F.normalize(text, p=2.0, dim=1, eps=NORM_EPS)
        overlap = label_overlap(labels, labels, v.dtype)
        return PairwiseInputs(symmetric_gram(v), symmetric_gram(t), cross_gram(v, t), overlap, *pair_masks(overlap))


# ----------------------------------------------------------------------------- Circle

#: Largest spread of exponents that one shared shift may cover: ``exp`` of anything in
#: [-80, 0] stays a normal number in both compute dtypes, float32 (down to e^-87.3) and
#: float64 (and off ``exp``'s slow underflow path); the half types are upcast first. When a
#: loss's exponents provably lie in a window this wide, one constant shift replaces the
#: per-row or per-mask maxima; otherwise the maxima are computed and exponents are clamped
#: to [-EXP_RANGE, EXP_RANGE] (entries outside a mask are multiplied by 0 afterwards; inside
#: it, terms below e^-80 relative to the largest are lifted to e^-80).
EXP_RANGE = 80.0


def circle_from_similarity(
    similarity: Tensor, positive: Tensor, negative: Tensor, m: float, gamma: float, reduction: str
) -> Tensor:
    r"""Circle loss of one modality from its symmetric cosine similarity matrix :math:`s`.

    ``positive`` and ``negative`` are symmetric 0/1 masks of the pairs :math:`i \ne j` that
    share a label and that share none (:func:`pair_masks`). With :math:`z = 1 - s` on
    positive pairs and :math:`z = s` on negative ones, both exponents of the loss take one
    form,

    .. math::
        \gamma\alpha_p(\Delta_p - s_p) = \gamma[z + m]_+(z - m), \qquad
        \gamma\alpha_n(s_n - \Delta_n) = \gamma[z + m]_+(z - m),

    and, :math:`\alpha` carrying no gradient, :math:`\partial\ell/\partial s = \mp\gamma[z+m]_+`.
    Since :math:`z \in [-1, 2]`, every exponent lies in :math:`[-\gamma m^2, \gamma(4 - m^2)]`.
    ``reduction="per_anchor"`` takes the log-sum-exps along each row. ``"global"`` takes
    them over all pairs :math:`i < j`; because :math:`s` and the masks are symmetric, that
    is the log-sum-exp over all :math:`i \ne j` minus :math:`\log 2`, and the gradient is
    split evenly between :math:`s_{ij}` and :math:`s_{ji}`.
    See :func:`gcnretrieval.losses.circle_loss`.
    """
    return _CircleFunction.apply(similarity, positive, negative, float(m), float(gamma), reduction)


class _CircleFunction(torch.autograd.Function):
    @staticmethod
    @_full_precision
    def forward(
        ctx: FunctionCtx,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        m: float,
        gamma: float,
        reduction: str,
    ) -> Tensor:
        # z = s + p (1 - 2 s): 1 - s on positive pairs, s elsewhere
        z = similarity.mul(-2.0).add_(1.0).mul_(positive).add_(similarity)
        slope = (z + m).clamp_(min=0.0).mul_(gamma)  # gamma * alpha, also |d logit / d s|
        logit = z.sub_(m).mul_(slope)
        dim = None if reduction == "global" else 1
        if 4.0 * gamma <= EXP_RANGE:
            # one shift, the exponents' upper bound, serves both masks
            shift = gamma * (4.0 - m * m)
            weights = logit.sub_(shift).exp_()
            sum_p, sum_n = _masked_sum(weights, positive, dim), _masked_sum(weights, negative, dim)
            lse_p, lse_n = shift + torch.log(sum_p), shift + torch.log(sum_n)
            has_p, has_n = sum_p > 0, sum_n > 0
            exp_p = exp_n = weights
        else:
            lift = 16.0 * gamma + 16.0  # above the exponents' spread of 4 gamma
            exp_p, sum_p, lse_p, has_p = _masked_exp(logit, positive, dim, lift)
            exp_n, sum_n, lse_n, has_n = _masked_exp(logit, negative, dim, lift)
        if reduction == "global":
            lse_p, lse_n = lse_p - math.log(2.0), lse_n - math.log(2.0)
        valid = has_p & has_n
        zero = torch.zeros((), dtype=similarity.dtype, device=similarity.device)
        total = torch.where(valid, lse_p + lse_n, zero)
        # log(1 + e^x) exactly: F.softplus returns x itself above x = 20 (off by up to 2e-9)
        terms = torch.where(valid, torch.logaddexp(total, zero), zero)
        sigma = torch.where(valid, torch.sigmoid(total), zero)
        if reduction == "global":
            loss, scale = terms, sigma
        else:
            count = valid.sum().clamp(min=1).to(similarity.dtype)
            loss, scale = terms.sum() / count, sigma / count
        if ctx.needs_input_grad[0]:
            # d loss / d s = scale * slope * (softmax_N - softmax_P); P and N do not overlap
            tiny = torch.finfo(similarity.dtype).tiny
            coef_n, coef_p = scale / sum_n.clamp(min=tiny), scale / sum_p.clamp(min=tiny)
            if dim is not None:
                coef_n, coef_p = coef_n.unsqueeze(1), coef_p.unsqueeze(1)
            if exp_p is exp_n:
                signed = exp_n.mul_(negative.mul(coef_n).addcmul_(positive, coef_p, value=-1.0))
            else:
                signed = exp_n.mul_(coef_n).sub_(exp_p.mul_(coef_p))
            ctx.save_for_backward(signed.mul_(slope))
        return loss

    @staticmethod
    @once_differentiable
    @_full_precision
    def backward(ctx: FunctionCtx, grad_loss: Tensor):
        (signed,) = ctx.saved_tensors
        return signed * grad_loss, None, None, None, None, None


def _masked_sum(weights: Tensor, mask: Tensor, dim: int | None) -> Tensor:
    """Sum of ``weights * mask`` over all entries (``dim=None``) or along ``dim``."""
    if dim is None:
        return torch.dot(weights.reshape(-1), mask.reshape(-1))
    return (weights * mask).sum(dim=dim)


def _masked_exp(
    logit: Tensor, mask: Tensor, dim: int | None, lift: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``exp(logit - peak)`` on the entries where ``mask`` is 1 (0 elsewhere), over all
    entries (``dim=None``) or along ``dim``, with the log-sum-exp and whether the slice had
    any entry.

    Returns ``(weights, sums, lse, has)``: the unnormalised weights and their sums (the
    caller normalises the weights in place). ``peak`` is the slice's maximum, found as the
    maximum of ``logit + lift * mask`` (``lift`` exceeds the logits' spread). Empty slices
    give zero weights, ``has = False`` and ``lse = -inf``.
    """
    lifted = torch.add(logit, mask, alpha=lift)
    peak = lifted.amax() if dim is None else lifted.amax(dim=dim, keepdim=True)
    has = peak > 0.5 * lift
    peak = torch.where(has, peak - lift, torch.zeros_like(peak))
    weights = torch.sub(logit, peak, out=lifted).clamp_(-EXP_RANGE, EXP_RANGE).exp_().mul_(mask)
    sums = weights.sum() if dim is None else weights.sum(dim=dim)
    if dim is not None:
        peak, has = peak.squeeze(dim), has.squeeze(dim)
    return weights, sums, peak + torch.log(sums), has


# ------------------------------------------------------------------ soft contrastive


def soft_contrastive_from_similarity(
    image_text: Tensor,
    image_image: Tensor,
    text_text: Tensor,
    overlap: Tensor,
    temperature: float,
    intra_weight: float,
    kappa: float,
) -> Tensor:
    r"""Soft contrastive loss from cosine similarity matrices and the symmetric label overlap.

    With :math:`S = c/\tau`, :math:`\bar{Y}` = ``overlap``, targets :math:`p` (row-normalised
    :math:`\bar{Y}`, or :math:`\bar{Y}` without its diagonal for the intra-modal blocks) and
    :math:`r_i = \sum_j p_{ij}`,

    .. math::
        \overline{m} = \frac1n\Big(\sum_{ij} p_{ij}S_{ij} - \sum_i r_i \log\sum_k e^{\kappa S_{ik}}\Big),
        \qquad
        \frac{\partial\overline{m}}{\partial S_{ij}} = \frac1n\big(p_{ij} - \kappa\, r_i\,
        \mathrm{softmax}_j(\kappa S_{i\cdot})\big).

    The text-to-image block is the image-to-text matrix read by columns; because
    :math:`\bar{Y}` is symmetric its targets are :math:`p^\top`. Cosines lie in
    :math:`[-1, 1]`, so the exponents :math:`\kappa S` lie in :math:`[-\kappa/\tau, \kappa/\tau]`.
    See :func:`gcnretrieval.losses.soft_contrastive_loss`.
    """
    return _SoftContrastiveFunction.apply(
        image_text, image_image, text_text, overlap, float(temperature), float(intra_weight), float(kappa)
    )


class _SoftContrastiveFunction(torch.autograd.Function):
    @staticmethod
    @_full_precision
    def forward(
        ctx: FunctionCtx,
        image_text: Tensor,
        image_image: Tensor,
        text_text: Tensor,
        overlap: Tensor,
        temperature: float,
        intra_weight: float,
        kappa: float,
    ) -> Tensor:
        n = overlap.size(0)
        scale = kappa / temperature  # exponent scale on the cosine: kappa * S = (kappa / tau) c
        bounded = 2.0 * scale <= EXP_RANGE  # one shift (the bound kappa / tau) fits every exponent
        inv = 1.0 / (n * temperature)  # d S / d c = 1 / tau, and the mean over n rows

        # image -> text (rows) and text -> image (columns); targets p = Ybar / d_i, p^T = Ybar / d_j
        degree = overlap.sum(dim=1)
        has_inter = (degree > 0).to(overlap.dtype)
        inv_degree = 1.0 / degree.clamp(min=1.0)
        targets = (inv_degree.unsqueeze(1) + inv_degree.unsqueeze(0)).mul_(overlap)  # p + p^T
        linear = torch.dot(targets.reshape(-1), image_text.reshape(-1))
        exp_rows, sum_rows, lse_rows = _shifted_exp(image_text, scale, 1, bounded)
        if bounded:  # the same shift serves the columns
            exp_cols, sum_cols = exp_rows, exp_rows.sum(dim=0)
            lse_cols = scale + torch.log(sum_cols)
        else:
            exp_cols, sum_cols, lse_cols = _shifted_exp(image_text, scale, 0, False)
        inter = -linear * inv + (torch.dot(has_inter, lse_rows) + torch.dot(has_inter, lse_cols)) / n
        row_coef = (kappa * inv) * has_inter / sum_rows
        col_coef = (kappa * inv) * has_inter / sum_cols
        if exp_cols is exp_rows:
            grad_vt = exp_rows.mul_(row_coef.unsqueeze(1) + col_coef.unsqueeze(0))
        else:
            grad_vt = exp_rows.mul_(row_coef.unsqueeze(1)).add_(exp_cols.mul_(col_coef.unsqueeze(0)))
        del exp_cols
        grad_vt.sub_(targets, alpha=inv)
        del targets

        # image -> image and text -> text; targets: Ybar without its diagonal, rows normalised
        intra_degree = degree - overlap.diagonal()
        has_intra = (intra_degree > 0).to(overlap.dtype)
        intra_targets = overlap / intra_degree.clamp(min=1.0).unsqueeze(1)
        intra_targets.diagonal().zero_()
        intra = torch.zeros((), dtype=overlap.dtype, device=overlap.device)
        intra_grads = []
        for similarity in (image_image, text_text):
            weights, sums, lse = _shifted_exp(similarity, scale, 1, bounded)
            coef = (kappa * intra_weight * inv) * has_intra / sums
            grad = weights.mul_(coef.unsqueeze(1)).sub_(intra_targets, alpha=intra_weight * inv)
            linear = torch.dot(intra_targets.reshape(-1), similarity.reshape(-1))
            intra = intra - linear * inv + torch.dot(has_intra, lse) / n
            intra_grads.append(grad)
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(grad_vt, *intra_grads)
        return inter + intra_weight * intra

    @staticmethod
    @once_differentiable
    @_full_precision
    def backward(ctx: FunctionCtx, grad_loss: Tensor):
        grad_vt, grad_vv, grad_tt = ctx.saved_tensors
        return grad_vt * grad_loss, grad_vv * grad_loss, grad_tt * grad_loss, None, None, None, None


def _shifted_exp(similarity: Tensor, scale: float, dim: int, bounded: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``exp(scale * c - shift)``, its sums along ``dim`` and the log-sum-exp of ``scale * c``.

    ``shift`` is ``scale`` (the bound for cosines) when ``bounded``, else the maximum
    along ``dim``.
    """
    weights = similarity * scale
    if bounded:
        weights.sub_(scale).exp_()
        sums = weights.sum(dim=dim)
        return weights, sums, scale + torch.log(sums)
    shift = weights.amax(dim=dim, keepdim=True)
    weights.sub_(shift).exp_()
    sums = weights.sum(dim=dim)
    return weights, sums, shift.squeeze(dim) + torch.log(sums)
