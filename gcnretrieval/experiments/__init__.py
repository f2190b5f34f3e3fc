"""Experiments: sweeps over recipe keys, comparisons of encoders and baselines, complexity.

- :func:`sweep`: one recipe over the cartesian product of values of recipe keys, and seeds;
- :func:`compare`: a sweep over ``encoder.name`` with the ``cca``/``pls`` baselines beside it;
- :func:`tune`: an Optuna search over recipe keys on the validation split, then one final run;
- :func:`run_baseline`: a closed-form CCA / PLS baseline as a run directory;
- :func:`experiment_complexity`: parameters and FLOPs per sample of a recipe's model.
"""
from gcnretrieval.experiments.baselines import run_baseline
from gcnretrieval.models.baselines import BASELINES, available_baselines, fit_baseline
from gcnretrieval.experiments.cells import Cell, CellResult
from gcnretrieval.experiments.compare import ComparisonResult, compare
from gcnretrieval.experiments.complexity import experiment_complexity
from gcnretrieval.experiments.sweep import SweepResult, parse_grid, sweep
from gcnretrieval.experiments.tune import TuneResult, tune

__all__ = ["BASELINES", "Cell", "CellResult", "ComparisonResult", "SweepResult", "TuneResult", "available_baselines",
           "compare", "experiment_complexity", "fit_baseline", "parse_grid", "run_baseline", "sweep", "tune"]
