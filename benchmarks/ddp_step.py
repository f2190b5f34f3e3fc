"""Seconds per data-parallel training step: 2 processes on the CPU (gloo), as ``torchrun`` runs them.

Shapes: MIRFlickr-25K's (4,096-d image, 1,386-d text features, 24 labels; random 300-d node features),
2,200 synthetic training pairs, batch 100 (50 per process), common dimension 1,024. Each process
trains one warm-up epoch, then the trainer's own
:meth:`~gcnretrieval.training.Trainer.train_epoch` times the second (22 steps); rank 0 reports the
mean seconds per step. To set two trees side by side (say ``git archive REV`` exported to
``/tmp/old``), run each in turn, alternating::

    PYTHONPATH=/tmp/old python benchmarks/ddp_step.py
    python benchmarks/ddp_step.py

Prints one JSON line: ``{"seconds_per_step": ..., "processes": 2, "cpu": ...}``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gcnretrieval.config import load_config
from gcnretrieval.training import Trainer, build_experiment, cpu_model

RECIPE = {
    "run": {"name": "ddp_step", "seed": 0},
    "data": {"source": "synthetic", "synthetic": {"num_train": 2200, "num_test": 20, "num_labels": 24,
                                                  "image_dim": 4096, "text_dim": 1386}},
    "graph": {"node_features": "random", "node_feature_dim": 300},
    "model": {"common_dim": 1024},
    "train": {"batch_size": 100, "epochs": 2, "device": "cpu"},
    "eval": {"select_on": "test"},
}


def _worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    trainer = Trainer(build_experiment(load_config(RECIPE)))
    trainer.train_epoch()  # warm-up
    dist.barrier()
    started = time.perf_counter()
    trainer.train_epoch()
    seconds = (time.perf_counter() - started) / len(trainer.loader)
    if rank == 0:
        with open(out_file, "w", encoding="utf-8") as handle:
            json.dump({"seconds_per_step": seconds}, handle)
    del trainer
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out_file = os.path.join(folder, "rank0.json")
        mp.start_processes(_worker, args=(2, os.path.join(folder, "init"), out_file), nprocs=2, join=True,
                           start_method="spawn")
        with open(out_file, encoding="utf-8") as handle:
            result = json.load(handle)
    print(json.dumps({**result, "processes": 2, "cpu": cpu_model()}))


if __name__ == "__main__":
    main()
