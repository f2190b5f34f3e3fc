"""Wall-clock of a full MIRFlickr-shaped training run (synthetic data), and its mAP.

18,015 training pairs (10 % carved for validation, as a real run does), 2,000 test
pairs, 4,096-d images, 1,386-d texts, 24 labels, depth-5 ``l2gcn``, common dimension
1,024, batch 100, Adam, selection on the validation split after every epoch. Reports the
seconds of training + per-epoch validation (data generation and model building
excluded), the seconds of the training steps alone, and the test mAP of the selected
epoch.

Usage::

    python benchmarks/train_epochs.py [--epochs 40] [--device cuda] [--num-train 18015] [--seed 0]

Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from gcnretrieval.config import load_config
from gcnretrieval.training import BestEpoch, Callback, Trainer, build_experiment, evaluate_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--num-train", type=int, default=18015)
    parser.add_argument("--num-test", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--foreach", action="store_true",
                        help="train.fused_optimizer = false (the foreach update instead of the fused one)")
    args = parser.parse_args()
    recipe = {
        "run": {"name": "epochs", "seed": args.seed},
        "data": {"source": "synthetic", "synthetic": {"num_train": args.num_train, "num_test": args.num_test,
                                                      "num_labels": 24, "image_dim": 4096, "text_dim": 1386}},
        "graph": {"kind": "cooccurrence", "node_features": "random"},
        "encoder": {"name": "l2gcn", "num_layers": 5},
        "model": {"common_dim": 1024},
        "train": {"batch_size": args.batch, "epochs": args.epochs, "device": args.device,
                  "fused_optimizer": not args.foreach},
        "eval": {"select_on": "val"},
    }
    experiment = build_experiment(load_config(recipe))
    trainer = Trainer(experiment)
    device = experiment.device

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    train_seconds = 0.0
    original = trainer.train_epoch

    def timed_epoch(callbacks=()) -> dict:
        nonlocal train_seconds
        sync()
        start = time.perf_counter()
        out = original(callbacks)
        sync()
        train_seconds += time.perf_counter() - start
        return out

    trainer.train_epoch = timed_epoch
    sync()
    start = time.perf_counter()
    best_state = {}

    class KeepBest(Callback):  # the selected weights, in memory instead of best.pt
        def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
            if row["selected"]:
                best_state.update({k: v.detach().clone() for k, v in experiment.model.state_dict().items()})

    history = trainer.fit([BestEpoch(), KeepBest()])
    sync()
    total = time.perf_counter() - start
    experiment.model.load_state_dict(best_state)
    test = evaluate_split(experiment.model, experiment.dataset.test, device)
    print(json.dumps({"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
                      else "cpu", "epochs": args.epochs, "train_pairs": len(experiment.dataset.train),
                      "batch": args.batch, "seconds_total": total, "seconds_train_steps": train_seconds,
                      "selected_epoch": trainer.best_epoch, "test": test, "last_val_avg_map": history[-1]["val_avg_map"],
                      "fused_optimizer": not args.foreach, "torch": torch.__version__, "load_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
