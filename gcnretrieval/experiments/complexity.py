"""Parameters and FLOPs per sample of the model a recipe builds (FLOPs counted by
:func:`gcnretrieval.models.complexity.model_flops`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gcnretrieval.models import count_parameters
from gcnretrieval.models.complexity import model_flops
from gcnretrieval.training import build_experiment

__all__ = ["experiment_complexity"]


def experiment_complexity(config: Any) -> dict[str, Any]:
    """Parameters and FLOPs of the model a recipe builds, on its first training batch (on CPU)."""
    experiment = build_experiment(config, device="cpu")
    split = experiment.dataset.train
    rows = min(experiment.config.train.batch_size, len(split))
    image = torch.from_numpy(np.array(split.image[:rows], dtype=np.float32))
    text = torch.from_numpy(np.array(split.text[:rows], dtype=np.float32))
    return {"parameters": count_parameters(experiment.model), **model_flops(experiment.model, image, text)}
