"""Training throughput of every trained method at its paper's batch size, side by side with ``l2gcn``.

Shapes: MIRFlickr-25K's (4,096-d image, 1,386-d text features, 24 labels; random 300-d node features),
synthetic pairs. Each method is its preset (:func:`gcnretrieval.methods.apply_method`) laid over one
recipe, so it runs at its own paper's batch size, model and objective; ``l2gcn`` is the paper's
settings (depth 5, common dimension 1,024, batch 100). For each method the trainer's own
:meth:`~gcnretrieval.training.Trainer.train_epoch` times ``--steps`` steps after one warm-up step; the
methods are timed in turn, ``--rounds`` times over (the median is reported), so that a change in the
machine's load touches all of them alike. ``relative to l2gcn`` divides each method's samples per
second by ``l2gcn``'s from the same run.

Usage::

    python benchmarks/method_throughput.py [--methods dscmr,acmr,...] [--steps 5] [--rounds 2]

Prints a markdown table and one JSON line per method.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gcnretrieval.config import load_config
from gcnretrieval.methods import METHODS, apply_method, available_methods
from gcnretrieval.training import Trainer, build_experiment, cpu_model

BASE = {
    "run": {"name": "bench", "seed": 0},
    "data": {"source": "synthetic", "synthetic": {"num_labels": 24, "image_dim": 4096, "text_dim": 1386,
                                                  "num_test": 8}},
    "graph": {"kind": "cooccurrence", "node_features": "random"},
    "encoder": {"name": "l2gcn", "num_layers": 5},
    "model": {"common_dim": 1024},
    "train": {"batch_size": 100, "epochs": 1, "lr": 5e-5, "device": "cpu"},
    "eval": {"select_on": "test"},
}


def trainer_for(method: str, steps: int) -> Trainer:
    """A trainer of ``method`` whose training split holds ``steps + 1`` whole batches."""
    batch = load_config(apply_method(BASE, method)).train.batch_size
    tree = apply_method(BASE, method)
    tree["data"]["synthetic"]["num_train"] = batch * (steps + 1)
    tree["train"].update({"drop_last": True, "epochs": 1})
    return Trainer(build_experiment(load_config(tree)))


def samples_per_second(trainer: Trainer, steps: int) -> float:
    """Samples per second over ``steps`` training steps, after one warm-up step."""
    batch = trainer.config.train.batch_size
    trainer.total_steps = 1
    trainer.train_epoch()
    trainer.total_steps = trainer.step + steps
    start = time.perf_counter()
    trainer.train_epoch()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    trained = [m for m in available_methods() if METHODS.get(m).baseline is None]
    parser.add_argument("--methods", default=",".join(trained), help="comma-separated trained methods")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    methods = list(dict.fromkeys(["l2gcn", *args.methods.split(",")]))
    rates: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.rounds):
        for method in methods:
            rates[method].append(samples_per_second(trainer_for(method, args.steps), args.steps))
    reference = statistics.median(rates["l2gcn"])
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| method | batch | samples / s (median) | relative to l2gcn |\n|---|---|---|---|")
    for method in methods:
        batch = load_config(apply_method(BASE, method)).train.batch_size
        median = statistics.median(rates[method])
        print(f"| {method} | {batch} | {median:.0f} | {median / reference:.2f}x |")
        print(json.dumps({"method": method, "batch": batch, "samples_per_s": rates[method]}))


if __name__ == "__main__":
    main()
