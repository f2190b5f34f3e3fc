"""Circle-Soft: a learnable convex mix of the Circle and soft contrastive losses."""
from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from gcnretrieval.losses._checks import check_choice, check_embedding_pair, check_interval, require_field
from gcnretrieval.losses.base import LossTerm
from gcnretrieval.losses.circle import REDUCTIONS, CircleLoss
from gcnretrieval.losses.pair_kernels import cosine_similarities, upcast
from gcnretrieval.losses.soft_contrastive import SoftContrastiveLoss, soft_contrastive_loss

LAMBDA_MODES = ("learned", "fixed", "uncertainty")
THETA_TARGETS = ("circle", "soft")
LambdaMode = Literal[LAMBDA_MODES]  # type: ignore[valid-type]
ThetaOn = Literal[THETA_TARGETS]  # type: ignore[valid-type]


class CircleSoftLoss(LossTerm):
    r"""Circle-Soft loss (eq. 23).

    .. math::
        \mathcal{L}_{CS} = \lambda\,\mathcal{L}_{cir} + (1 - \lambda)\,\mathcal{L}_{soft},
        \qquad \lambda = \mathrm{clamp}(\lambda_{raw}, 0, 1)

    :math:`\mathcal{L}_{cir}` is the Circle loss summed over the image and text embeddings,
    :math:`\mathcal{L}_{soft}` the soft contrastive loss. :math:`\lambda_{raw}` starts at
    :math:`\theta` and is an ``nn.Parameter`` trained by the model's optimizer
    (``lambda_mode="learned"``), or a buffer fixed at :math:`\theta`
    (``lambda_mode="fixed"``). With ``theta_on="soft"`` the weight moves to the soft term:
    :math:`\mathcal{L}_{CS} = (1 - \lambda)\mathcal{L}_{cir} + \lambda\mathcal{L}_{soft}`.

    **Uncertainty weighting** (``lambda_mode="uncertainty"``, Kendall et al., CVPR 2018):
    with learned log-variances :math:`s_c, s_s` in place of :math:`\lambda`,

    .. math::
        \mathcal{L}_{CS} = \tfrac12 e^{-s_c} \mathcal{L}_{cir} + \tfrac12 e^{-s_s} \mathcal{L}_{soft}
            + \tfrac12 (s_c + s_s),

    initialised so that the two weights start at :math:`\theta` and :math:`1 - \theta` (the
    weight of ``theta_on``'s term being :math:`\theta`); each weight settles where it balances
    its term, :math:`e^{-s} = 1/\mathcal{L}`. The logged ``lambda`` is then the circle term's
    share of the two weights. Under ``"learned"``, :math:`\partial\mathcal{L}_{CS}/\partial\lambda
    = \pm(\mathcal{L}_{cir} - \mathcal{L}_{soft})` (``lambda_grad`` in the log) does not shrink as
    :math:`\lambda` moves, so :math:`\lambda` drifts towards a bound.

    A term whose weight is fixed at 0 (``lambda_mode="fixed"`` with :math:`\theta \in \{0, 1\}`)
    is still computed and logged, without a backward pass through it (its gradient is 0).

    With ``fused=True`` (default) the cosine matrices and label masks are built once per
    batch (:func:`~gcnretrieval.losses.pair_kernels.cosine_similarities`) and read by both
    fused kernels. ``fused=False`` is the reference path: :class:`CircleLoss` and
    :class:`SoftContrastiveLoss` each on their own, op by op, differentiated by autograd.
    Either way float16 and bfloat16 embeddings are upcast to float32 and the pairwise terms
    are computed with autocast off (see :func:`~gcnretrieval.losses.circle_loss`).

    **Clamp and gradient.** The forward pass uses the clamped value, so the weight in use
    always lies in :math:`[0, 1]`, and passes the gradient straight through the clamp
    (:math:`\partial\lambda/\partial\lambda_{raw} = 1` everywhere). A plain clamp has zero
    gradient outside :math:`[0, 1]`; because :math:`\mathcal{L}_{CS}` is linear in
    :math:`\lambda`, an optimizer step (Adam's momentum) that overshoots a boundary would
    otherwise freeze :math:`\lambda` there for good. :meth:`project_` clamps
    :math:`\lambda_{raw}` itself back into :math:`[0, 1]`; calling it after
    ``optimizer.step()`` keeps the raw value, the checkpoint and the weight in use equal.

    Args:
        theta: initial (or fixed) weight :math:`\theta \in [0, 1]` (default ``0.6``).
        lambda_mode: ``"learned"`` (default), ``"fixed"`` or ``"uncertainty"``.
        theta_on: which term :math:`\lambda` weighs: ``"circle"`` (default) or ``"soft"``.
        m: Circle margin (default ``0.25``).
        gamma: Circle scale (default ``16.0``).
        reduction: Circle reduction, ``"global"`` (default) or ``"per_anchor"``.
        temperature: soft contrastive :math:`\tau` (default ``0.22``).
        intra_weight: soft contrastive :math:`\gamma_s` (default ``0.14``).
        fused: fused kernels on shared similarity matrices (default ``True``) or the
            op-by-op reference path.
    """

    def __init__(
        self,
        theta: float = 0.6,
        lambda_mode: str = "learned",
        theta_on: str = "circle",
        m: float = 0.25,
        gamma: float = 16.0,
        reduction: str = "global",
        temperature: float = 0.22,
        intra_weight: float = 0.14,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.theta = check_interval("theta", theta)
        self.lambda_mode = check_choice("lambda_mode", lambda_mode, LAMBDA_MODES)
        self.theta_on = check_choice("theta_on", theta_on, THETA_TARGETS)
        check_choice("reduction", reduction, REDUCTIONS)
        self.fused = bool(fused)
        self.circle = CircleLoss(m=m, gamma=gamma, reduction=reduction, fused=self.fused)
        self.soft = SoftContrastiveLoss(temperature=temperature, intra_weight=intra_weight, fused=self.fused)
        initial = torch.tensor(self.theta)
        if self.lambda_mode == "learned":
            self.lambda_raw = nn.Parameter(initial)
        else:
            self.register_buffer("lambda_raw", initial)
        if self.lambda_mode == "uncertainty":
            self.log_variances = nn.Parameter(torch.empty(2))  # circle, soft
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.lambda_raw.fill_(self.theta)
            if self.lambda_mode == "uncertainty":  # start at the weights theta and 1 - theta: e^-s / 2 = w
                circle = self.theta if self.theta_on == "circle" else 1.0 - self.theta
                weights = torch.tensor([circle, 1.0 - circle]).clamp_min(1e-6)
                self.log_variances.copy_(-torch.log(2.0 * weights))

    @property
    def weight(self) -> Tensor:
        """:math:`\\lambda` in use (clamped to [0, 1], straight-through gradient to ``lambda_raw``); under
        ``"uncertainty"``, the circle term's share of the two weights."""
        if self.lambda_mode == "uncertainty":
            weights = torch.exp(-self.log_variances.detach())
            return weights[0] / weights.sum()
        raw = self.lambda_raw
        return raw.detach().clamp(0.0, 1.0) + (raw - raw.detach())

    @torch.no_grad()
    def term_weights(self) -> tuple[float, float]:
        r"""The weights :math:`(w_{cir}, w_{soft})` that multiply the two terms: :math:`(\lambda, 1 - \lambda)`
        (swapped for ``theta_on="soft"``), or :math:`(\tfrac12 e^{-s_c}, \tfrac12 e^{-s_s})` under
        ``"uncertainty"``."""
        if self.lambda_mode == "uncertainty":
            circle, soft = (0.5 * torch.exp(-self.log_variances.float())).tolist()
            return circle, soft
        lam = float(self.lambda_raw.clamp(0.0, 1.0))
        return (lam, 1.0 - lam) if self.theta_on == "circle" else (1.0 - lam, lam)

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp ``lambda_raw`` into [0, 1] in place (call after ``optimizer.step()``)."""
        self.lambda_raw.clamp_(0.0, 1.0)

    def _fixed_at_zero(self) -> tuple[bool, bool]:
        """Whether the circle term, the soft term, has a fixed weight of 0 (``lambda_mode="fixed"``)."""
        if self.lambda_mode != "fixed" or self.theta not in (0.0, 1.0):
            return False, False
        circle_zero = (self.theta == 0.0) == (self.theta_on == "circle")
        return circle_zero, not circle_zero

    def components(self, output: Any, labels: Tensor) -> dict[str, Tensor]:
        """Return ``circle``, ``soft``, ``lambda`` and their mix ``circle_soft`` (all attached)."""
        image = require_field(output, "image_embedding")
        text = require_field(output, "text_embedding")
        check_embedding_pair(image, text, labels)
        # one cast per modality: the gradients of both terms add up in float32, then round once
        image, text = upcast(image), upcast(text)
        grad = torch.is_grad_enabled()
        circle_off, soft_off = self._fixed_at_zero()
        if self.fused:
            pairs = cosine_similarities(image, text, labels)  # built once, read by both terms
            with torch.set_grad_enabled(grad and not circle_off):
                l_cir = self.circle.from_similarities(pairs)
            with torch.set_grad_enabled(grad and not soft_off):
                l_soft = self.soft.from_similarities(pairs)
        else:
            with torch.set_grad_enabled(grad and not circle_off):
                l_cir = self.circle(image, labels) + self.circle(text, labels)
            with torch.set_grad_enabled(grad and not soft_off):
                l_soft = soft_contrastive_loss(
                    image, text, labels, self.soft.temperature, self.soft.intra_weight, fused=False
                )
        lam = self.weight
        if self.lambda_mode == "uncertainty":
            s = self.log_variances
            mixed = 0.5 * torch.exp(-s[0]) * l_cir + 0.5 * torch.exp(-s[1]) * l_soft + 0.5 * s.sum()
            gradient = torch.full_like(mixed, float("nan"))
        elif self.theta_on == "circle":
            mixed = lam * l_cir + (1.0 - lam) * l_soft
            gradient = (l_cir - l_soft).detach()
        else:
            mixed = (1.0 - lam) * l_cir + lam * l_soft
            gradient = (l_soft - l_cir).detach()
        return {"circle": l_cir, "soft": l_soft, "lambda": lam, "lambda_grad": gradient, "circle_soft": mixed}

    def forward(self, output: Any, labels: Tensor) -> Tensor:
        return self.components(output, labels)["circle_soft"]

    def extra_repr(self) -> str:
        return (
            f"theta={self.theta}, lambda_mode={self.lambda_mode!r}, theta_on={self.theta_on!r}, fused={self.fused}"
        )
