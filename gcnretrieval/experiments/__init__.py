"""Experiments: sweeps over recipe keys, comparisons of encoders and baselines, complexity.

- :func:`sweep`: one recipe over the cartesian product of values of recipe keys, and seeds;
- :func:`compare`: a sweep over ``encoder.name`` with the ``cca``/``pls`` baselines beside it;
- :func:`run_baseline`: a closed-form CCA / PLS baseline as a run directory;
- :func:`model_flops`, :func:`experiment_complexity`: parameters and FLOPs per sample.
"""
from gcnretrieval.experiments.baselines import BASELINES, available_baselines, fit_baseline, run_baseline
from gcnretrieval.experiments.cells import Cell, CellResult
from gcnretrieval.experiments.compare import ComparisonResult, compare
from gcnretrieval.experiments.complexity import count_flops, experiment_complexity, model_flops
from gcnretrieval.experiments.sweep import SweepResult, parse_grid, sweep

__all__ = [
    "BASELINES",
    "Cell",
    "CellResult",
    "ComparisonResult",
    "SweepResult",
    "available_baselines",
    "compare",
    "count_flops",
    "experiment_complexity",
    "fit_baseline",
    "model_flops",
    "parse_grid",
    "run_baseline",
    "sweep",
]
