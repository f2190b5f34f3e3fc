"""Wall-clock of full training runs at a benchmark's shapes (synthetic data), and their mAP.

Shapes (``--shape``): ``mirflickr`` (18,015 training pairs, 4,096-d images, 1,386-d texts,
24 labels, depth-5 ``l2gcn``, batch 100) or ``nuswide`` (188,421 training pairs, 1,000-d
texts, 21 labels, depth 6, batch 2,048); common dimension 1,024, Adam, 10 % of the training
pairs carved for validation and selection after every epoch, as a real run does. The data
are generated once and every variant (``--variants``: ``32``, ``tf32``, ``bf16``, ``fp16``, each
optionally ``+compile``: the recipe keys ``train.precision``, ``train.tf32``,
``train.compile``) trains on them in turn with the same seed; a variant that would start
after ``--budget`` seconds is skipped and reported as such.

Reports per variant the seconds of training + per-epoch validation (data generation and
model building excluded), of the first epoch (compilation included) and of the training
steps alone, and the test mAP of the selected epoch.

Usage::

    python benchmarks/train_epochs.py [--shape mirflickr] [--epochs 40] [--device cuda] [--variants 32 bf16+compile]

Prints one JSON line per variant.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from gcnretrieval.config import load_config
from gcnretrieval.data import carve_validation, make_synthetic
from gcnretrieval.evaluation import evaluate_split
from gcnretrieval.training import BestEpoch, Callback, Trainer, build_experiment

SHAPES = {
    "mirflickr": {"num_train": 18015, "num_labels": 24, "text_dim": 1386, "depth": 5, "batch": 100},
    "nuswide": {"num_train": 188421, "num_labels": 21, "text_dim": 1000, "depth": 6, "batch": 2048},
}
PRECISIONS = {"32": ("32", False), "tf32": ("32", True), "bf16": ("bf16-mixed", False), "fp16": ("16-mixed", False)}


def train_variant(dataset, shape: dict, variant: str, args: argparse.Namespace) -> dict:
    precision, tf32 = PRECISIONS[variant.split("+")[0]]
    compile_ = variant.endswith("+compile")
    train = {"batch_size": shape["batch"], "epochs": args.epochs, "device": args.device, "precision": precision,
             "compile": compile_}
    if tf32:
        train["tf32"] = True
    recipe = {"run": {"name": "epochs", "seed": args.seed}, "data": {"source": "synthetic"},
              "graph": {"kind": "cooccurrence", "node_features": "random"},
              "encoder": {"name": "l2gcn", "num_layers": shape["depth"]}, "model": {"common_dim": 1024},
              "train": train}
    experiment = build_experiment(load_config(recipe), dataset=dataset)
    trainer = Trainer(experiment)
    device = experiment.device

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step_seconds: list[float] = []
    original = trainer.train_epoch

    def timed_epoch(callbacks=()) -> dict:
        sync()
        start = time.perf_counter()
        out = original(callbacks)
        sync()
        step_seconds.append(time.perf_counter() - start)
        return out

    trainer.train_epoch = timed_epoch
    best_state = {}

    class KeepBest(Callback):  # the selected weights, in memory instead of best.pt
        def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
            if row["selected"]:
                best_state.update({k: v.detach().clone() for k, v in experiment.model.state_dict().items()})

    sync()
    start = time.perf_counter()
    history = trainer.fit([BestEpoch(), KeepBest()])
    sync()
    total = time.perf_counter() - start
    experiment.model.load_state_dict(best_state)
    test = evaluate_split(experiment.model, dataset.test, device)
    return {"variant": variant, "precision": precision, "tf32": tf32, "compile": compile_, "seconds_total": total,
            "seconds_first_epoch": history[0]["seconds"], "seconds_train_steps": sum(step_seconds),
            "selected_epoch": trainer.selection.best_epoch, "test": test, "last_val_avg_map": history[-1]["val_avg_map"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mirflickr")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--pairs", type=int, default=None, help="training pairs (default: the shape's)")
    parser.add_argument("--num-test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=["32"],
                        help="32, tf32, bf16 or fp16, each optionally +compile (default: 32)")
    parser.add_argument("--budget", type=float, default=float("inf"), help="seconds after which no variant starts")
    args = parser.parse_args()
    shape = SHAPES[args.shape]
    started = time.perf_counter()
    data = make_synthetic(num_train=args.pairs or shape["num_train"], num_test=args.num_test,
                          num_labels=shape["num_labels"], image_dim=4096, text_dim=shape["text_dim"], seed=args.seed)
    dataset = carve_validation(data, 0.1, seed=args.seed)
    info = {"shape": args.shape, "device": args.device, "epochs": args.epochs, "train_pairs": len(dataset.train),
            "batch": shape["batch"], "torch": torch.__version__, "data_seconds": time.perf_counter() - started,
            "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}
    for variant in args.variants:
        if time.perf_counter() - started > args.budget:
            print(json.dumps({**info, "variant": variant, "skipped": "time budget"}), flush=True)
            continue
        row = train_variant(dataset, shape, variant, args)
        print(json.dumps({**info, **row, "load_1min": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
