"""Pieces of the trainer: checkpoints with RNG state, progress bars, training figures."""
from gcnretrieval.training.checkpoints import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from gcnretrieval.training.figures import plot_history
from gcnretrieval.training.progress import ProgressBar

__all__ = [
    "ProgressBar",
    "capture_rng_state",
    "load_checkpoint",
    "plot_history",
    "restore_rng_state",
    "save_checkpoint",
]
