"""Checkpoints: written atomically, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings and containers. Random number
generator states are kept in that form too: the torch CPU (and CUDA) states are byte
tensors, Python's ``random.getstate()`` is a tuple of integers, and a
``numpy.random.Generator`` is saved as its ``bit_generator.state`` dict.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcnretrieval.errors import ConfigError

__all__ = ["capture_rng_state", "load_checkpoint", "restore_rng_state", "save_checkpoint"]


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; train first with `gcnretrieval run`")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt or foreign file
        raise ConfigError(f"cannot read checkpoint {path} ({type(err).__name__}: {err}); it may be truncated or not a gcnretrieval checkpoint") from None


def capture_rng_state(batch_generator: torch.Generator, numpy_generator: np.random.Generator) -> dict[str, Any]:
    """Every random state a training run draws from."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": numpy_generator.bit_generator.state,
        "batches": batch_generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], batch_generator: torch.Generator, numpy_generator: np.random.Generator) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy_generator.bit_generator.state = state["numpy"]
    batch_generator.set_state(state["batches"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
