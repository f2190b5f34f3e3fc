"""Training: a recipe's experiment, the fit loop and its callbacks, the run directory.

- :func:`build_experiment`: data, label graph, model and objective of a recipe;
- :class:`Trainer`: the loop over a ``DataLoader``, with callbacks
  (:mod:`gcnretrieval.training.callbacks`);
- :class:`RunDirectory`: where a run's files go, each written atomically;
- :mod:`gcnretrieval.training.distributed`: several processes under ``torchrun``.
"""
from gcnretrieval.training.callbacks import (BestEpoch, Callback, Checkpoints, EarlyStopping, MetricsLog, ProgressBar,
                                            run_callbacks)
from gcnretrieval.training.experiment import Experiment, build_experiment, build_label_graph_for, load_data, resolve_device
from gcnretrieval.training.figures import plot_history
from gcnretrieval.training.rundir import RunDirectory, cpu_model, environment
from gcnretrieval.evaluation import embed_split, evaluate_split
from gcnretrieval.training.trainer import Trainer, build_optimizer

__all__ = ["BestEpoch", "Callback", "Checkpoints", "EarlyStopping", "Experiment", "MetricsLog", "ProgressBar",
           "RunDirectory", "Trainer", "build_experiment", "build_label_graph_for", "build_optimizer",
           "cpu_model", "embed_split", "environment", "evaluate_split", "load_data", "plot_history",
           "resolve_device", "run_callbacks"]
