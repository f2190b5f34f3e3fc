r"""Learning-rate schedules over the optimisation steps, as ``torch.optim.lr_scheduler.LambdaLR`` factors.

With steps :math:`t = 0, \dots, T - 1`, a warm-up of :math:`W = \text{warmup} \cdot T` steps
reaching the full rate at :math:`p = W - 1`, and :math:`u = (t - p) / (T - 1 - p)` after
it, the factor of the base learning rate at step :math:`t` is

.. math::
    \text{warm-up } (t < p)\text{: } \frac{t + 1}{W}, \qquad
    \text{constant: } 1, \qquad
    \text{cosine: } \tfrac12 (1 + \cos \pi u), \qquad
    \text{onecycle: } f_0 + (1 - f_0)\tfrac12(1 - \cos \pi \tfrac{t}{p}) \text{ rising, then }
    f_1 + (1 - f_1) \tfrac12 (1 + \cos \pi u)

with one-cycle's start :math:`f_0 = 1/25`, end :math:`f_1 = f_0 / 10^4` and :math:`W = 0.3\,T`
unless ``warmup`` is set (the shape of ``torch.optim.lr_scheduler.OneCycleLR``). The factor is
a pure function of :math:`t` and :math:`T`, so a resumed run, or one given more steps,
continues on the schedule of its current length.
"""
from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["StepSchedule", "lr_factor"]

ONECYCLE_RISE, ONECYCLE_START, ONECYCLE_END = 0.3, 1 / 25, 1 / 25 / 1e4


def lr_factor(schedule: str, step: int, total: int, warmup: float) -> float:
    """The factor of the base learning rate at step ``step`` (0-based) of ``total``."""
    rise = (warmup or (ONECYCLE_RISE if schedule == "onecycle" else 0.0)) * total
    peak = max(rise - 1.0, 0.0)  # where the full rate is reached
    if step < peak:
        if schedule == "onecycle":
            return ONECYCLE_START + (1 - ONECYCLE_START) * (1 - math.cos(math.pi * step / peak)) / 2
        return (step + 1) / rise
    if schedule == "constant":
        return 1.0
    end = ONECYCLE_END if schedule == "onecycle" else 0.0
    progress = min(1.0, (step - peak) / max(1, total - 1 - peak))
    return end + (1 - end) * (1 + math.cos(math.pi * progress)) / 2


class StepSchedule(LambdaLR):
    """``LambdaLR`` with the factor :func:`lr_factor`, stepped once per optimisation step over
    ``total_steps`` steps (an attribute: a resumed run sets its own)."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: str, total_steps: int, warmup: float) -> None:
        self.schedule, self.total_steps, self.warmup = schedule, total_steps, warmup
        super().__init__(optimizer, lambda step: lr_factor(self.schedule, step, self.total_steps, self.warmup))
