"""The full training objective and its ablation conditions."""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from gcnretrieval.checks import check_choice, check_non_negative
from gcnretrieval.losses.adversarial import LOGIT_FIELDS, AdversarialLoss
from gcnretrieval.losses.base import MethodObjective
from gcnretrieval.losses.circle_soft import CircleSoftLoss, LambdaMode, ThetaOn
from gcnretrieval.losses.pair_kernels import REDUCTIONS
from gcnretrieval.losses.classification import ClassificationLoss

log = logging.getLogger(__name__)

Reduction = Literal[REDUCTIONS]  # type: ignore[valid-type]

#: Terms kept by each ablation condition (the paper's conditions 1-5).
CONDITIONS: dict[str, tuple[str, ...]] = {
    "all": ("circle_soft", "classification", "adversarial"),
    "cs_only": ("circle_soft",),
    "no_cla": ("circle_soft", "adversarial"),
    "no_adv": ("circle_soft", "classification"),
    "no_cs": ("classification", "adversarial"),
}
Condition = Literal[tuple(CONDITIONS)]  # type: ignore[valid-type]

_TERM_FIELDS = {
    "circle_soft": ("image_embedding", "text_embedding"),
    "classification": ("image_label_scores", "text_label_scores"),
    "adversarial": LOGIT_FIELDS,
}


class Objective(MethodObjective):
    r"""Training objective (eq. 26).

    .. math::
        \mathcal{L} = \mathcal{L}_{CS} + \alpha\,\mathcal{L}_{cla} + \beta\,\mathcal{L}_{adv}

    ``condition`` selects the paper's ablations: ``"all"`` (1), ``"cs_only"`` (2: only
    :math:`\mathcal{L}_{CS}`), ``"no_cla"`` (3), ``"no_adv"`` (4), ``"no_cs"`` (5).

    The objective owns the learnable Circle-Soft weight :math:`\lambda`: give
    ``objective.parameters()`` to the optimizer together with the model's; it is saved in
    ``state_dict()`` as ``circle_soft.lambda_raw``. Call :meth:`project_` after each
    ``optimizer.step()`` to keep the raw parameter in :math:`[0, 1]` (the forward pass
    clamps it anyway; see :class:`CircleSoftLoss`).

    ``forward`` returns ``(total, parts)``. ``total`` carries the gradient. ``parts`` holds
    *detached* scalars for logging (``circle``, ``soft``, ``circle_soft``,
    ``classification``, ``adversarial``, ``lambda``, ``total``), so keeping them does not
    keep the autograd graph alive. Terms dropped by the condition are still computed for
    the log, without gradient; a dropped term whose inputs the output lacks is logged as
    ``nan``.

    Args:
        alpha: weight of :math:`\mathcal{L}_{cla}` (default ``1.1``).
        beta: weight of :math:`\mathcal{L}_{adv}` (default ``2.2``).
        theta: initial / fixed Circle-Soft weight (default ``0.6``).
        condition: ablation condition (default ``"all"``).
        lambda_mode: ``"learned"`` (default), ``"fixed"`` or ``"uncertainty"`` (see :class:`CircleSoftLoss`).
        theta_on: ``"circle"`` (default) or ``"soft"``.
        m: Circle margin (default ``0.25``).
        gamma: Circle scale (default ``16.0``).
        reduction: Circle reduction (default ``"global"``).
        temperature: soft contrastive :math:`\tau` (default ``0.22``).
        intra_weight: soft contrastive :math:`\gamma_s` (default ``0.14``).
        view_weight: adversarial :math:`\mu` (default ``1.0``).
        fused: the fused pairwise kernels (default ``True``) or the op-by-op reference path.
    """

    parts: ClassVar[tuple[str, ...]] = ("total", "circle_soft", "circle", "soft", "classification", "adversarial")
    #: d L_CS / d lambda = +-(L_cir - L_soft), averaged over the epoch
    averaged: ClassVar[tuple[str, ...]] = ("lambda_grad",)

    def __init__(
        self,
        alpha: float = 1.1,
        beta: float = 2.2,
        theta: float = 0.6,
        condition: Condition = "all",
        lambda_mode: LambdaMode = "learned",
        theta_on: ThetaOn = "circle",
        m: float = 0.25,
        gamma: float = 16.0,
        reduction: Reduction = "global",
        temperature: float = 0.22,
        intra_weight: float = 0.14,
        view_weight: float = 1.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)
        self.condition = check_choice("condition", condition, Condition)
        self.circle_soft = CircleSoftLoss(
            theta=theta,
            lambda_mode=lambda_mode,
            theta_on=theta_on,
            m=m,
            gamma=gamma,
            reduction=reduction,
            temperature=temperature,
            intra_weight=intra_weight,
            fused=fused,
        )
        self.classification = ClassificationLoss()
        self.adversarial = AdversarialLoss(view_weight=view_weight)
        self._warned = False

    @staticmethod
    def ignored_arguments(given: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """The arguments in ``given`` that its ``condition`` makes meaningless, with the reason."""
        condition = given.get("condition", "all")
        terms = CONDITIONS.get(condition, CONDITIONS["all"])
        owners = {"classification": ("alpha",), "adversarial": ("beta", "view_weight"),
                  "circle_soft": ("theta", "lambda_mode", "theta_on", "m", "gamma", "reduction", "temperature",
                                  "intra_weight")}
        for term, arguments in owners.items():
            for argument in arguments:
                if term not in terms and argument in given:
                    yield argument, f"with loss.condition = \"{condition}\" (it drops the {term} term)"

    @property
    def active_terms(self) -> tuple[str, ...]:
        """Names of the terms that enter the total under ``condition``."""
        return CONDITIONS[self.condition]

    @property
    def weight(self) -> Tensor:
        """The Circle-Soft weight :math:`\\lambda` in use (in [0, 1])."""
        return self.circle_soft.weight

    def reset_parameters(self) -> None:
        self.circle_soft.reset_parameters()
        self._warned = False

    def epoch_values(self, means: dict[str, float], epoch: int) -> dict[str, float]:
        """The Circle-Soft weight :math:`\\lambda` and the two term weights it gives; a warning, once,
        when a learned :math:`\\lambda` reaches a bound."""
        values = {"lambda": float(self.weight.detach())}
        values["weight_circle"], values["weight_soft"] = self.circle_soft.term_weights()
        if self.circle_soft.lambda_mode == "learned" and values["lambda"] in (0.0, 1.0) and not self._warned:
            self._warned = True
            log.warning("the Circle-Soft weight lambda reached its bound %g at epoch %d (d loss / d lambda = %.3g "
                        "does not shrink as lambda moves); loss.lambda_mode = \"uncertainty\" balances the terms "
                        "instead", values["lambda"], epoch, means["lambda_grad"])
        return values

    def project_(self) -> None:
        """Clamp the raw :math:`\\lambda` into [0, 1]; call after ``optimizer.step()``."""
        self.circle_soft.project_()

    def forward(self, output: Any, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # the loss is float32 whatever the precision of the forward pass (torch.autocast included)
        with torch.autocast(labels.device.type, enabled=False):
            return self._float32_forward(_float32(output), labels)

    def _float32_forward(self, output: Any, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        active = self.active_terms
        values: dict[str, Tensor] = {}

        with torch.set_grad_enabled(torch.is_grad_enabled() and "circle_soft" in active):
            if "circle_soft" in active or _has_fields(output, "circle_soft"):
                values.update(self.circle_soft.components(output, labels))
        with torch.set_grad_enabled(torch.is_grad_enabled() and "classification" in active):
            if "classification" in active or _has_fields(output, "classification"):
                values["classification"] = self.classification(output, labels)
        with torch.set_grad_enabled(torch.is_grad_enabled() and "adversarial" in active):
            if "adversarial" in active or _has_fields(output, "adversarial"):
                values["adversarial"] = self.adversarial(output, labels)

        scale = {"circle_soft": 1.0, "classification": self.alpha, "adversarial": self.beta}
        total = sum(scale[name] * values[name] for name in active)

        parts = {name: values[name].detach() if name in values else _nan(total) for name in self.parts[1:]}
        parts["lambda"] = self.weight.detach()
        parts["lambda_grad"] = values["lambda_grad"] if "lambda_grad" in values else _nan(total)
        parts["total"] = total.detach()
        return total, parts

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, condition={self.condition!r}"


def _float32(output: Any) -> Any:
    """A copy of a model output with its half-precision tensors cast to float32 (with gradient)."""
    if not dataclasses.is_dataclass(output):
        return output
    changes = {f.name: getattr(output, f.name).float() for f in dataclasses.fields(output)
               if isinstance(getattr(output, f.name), Tensor) and getattr(output, f.name).dtype in (torch.float16, torch.bfloat16)}
    return dataclasses.replace(output, **changes)


def _has_fields(output: Any, term: str) -> bool:
    return all(getattr(output, field, None) is not None for field in _TERM_FIELDS[term])


def _nan(like: Tensor) -> Tensor:
    return torch.full((), math.nan, dtype=like.dtype, device=like.device)
