"""Training throughput at MIRFlickr-25K shapes, next to this machine's matrix-multiply rate.

Shapes: 4,096-d image and 1,386-d text features, 24 labels (random 300-d node
features, co-occurrence graph from the synthetic training labels), depth-5 ``l2gcn``,
common dimension 1,024, Adam. For each batch size the trainer's own
:meth:`~gcnretrieval.training.Trainer.train_epoch` runs over a synthetic training split of
``--pairs`` pairs (rounded up to whole batches, at least ``--min-steps`` of them) after
one warm-up step; the samples per second are scaled to the 18,015-pair epoch.

FLOPs per step are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one
full training step (forward + backward; the optimizer's elementwise update is not a
matrix product and is not counted). Achieved GFLOP/s = FLOPs per step x steps per
second, judged against the float32 rate of a 2048x4096 @ 4096x1024 product measured in
the same process right before and right after each timed run: the faster of ``torch.mm``
(the BLAS library) and, on the CPU, the oneDNN product that float32 training uses where this
CPU prefers it (:mod:`gcnretrieval.models.onednn`), best of five each; the higher of the two
measurements is the reference, so a slow moment of the machine during the reference cannot
inflate the ratio. ``--linear both`` times float32 CPU steps through the BLAS library and
through oneDNN side by side, whatever this CPU prefers.

Threads: on an idle machine keep OpenMP's default (spinning) wait policy; on a machine
shared with other jobs (load above the core count) spinning makes small multithreaded
kernels stall for a scheduler slice (a 100x4096 BatchNorm took 100 ms instead of 0.3 ms
at load 8); there, run with ``OMP_WAIT_POLICY=PASSIVE``. The setting is printed.

Host memory: like the ``gcnretrieval run`` command, the script first makes glibc keep
freed memory for reuse (:mod:`gcnretrieval.training.host_memory`);
``--release-host-memory`` leaves the default, as a Python program using the library does.

The optimizer comparison times ``optimizer.step()`` alone over the model's parameters
for Adam's single-tensor, ``foreach`` and ``fused`` implementations, side by side.

Usage::

    python benchmarks/train_throughput.py [--batches 100 2048] [--pairs 2000] [--device cpu]

Prints a markdown table and one JSON line per measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from gcnretrieval.config import load_config
from gcnretrieval.models.onednn import onednn_linear, onednn_linear_available
from gcnretrieval.training import Trainer, build_experiment, cpu_model
from gcnretrieval.training.host_memory import keep_freed_host_memory

EPOCH_PAIRS = 18015


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "load_1min": os.getloadavg()[0],
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(product, device: torch.device, repeats: int) -> float:
    product()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        product()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_rates(device: torch.device, repeats: int = 5) -> dict[str, float]:
    """Best float32 GFLOP/s of 2048x4096 @ 4096x1024 (the projector's shape at batch 2,048) by
    ``torch.mm`` and, on the CPU, by the oneDNN product the model's Linear layers use."""
    a = torch.randn(2048, 4096, device=device)
    b = torch.randn(4096, 1024, device=device)
    flops = 2 * 2048 * 4096 * 1024
    rates = {"torch.mm": flops / _best_seconds(lambda: torch.mm(a, b), device, repeats) / 1e9}
    if device.type == "cpu" and onednn_linear_available():
        weight = b.t().contiguous()

        def onednn_product() -> None:
            with onednn_linear():
                torch.nn.functional.linear(a, weight)

        rates["onednn"] = flops / _best_seconds(onednn_product, device, repeats) / 1e9
    return rates


def matmul_rate(device: torch.device, repeats: int = 5) -> float:
    """The faster float32 product of :func:`matmul_rates`: the reference the step is judged against."""
    return max(matmul_rates(device, repeats).values())


def recipe(batch: int, num_train: int, device: str, fused: bool = True, precision: str = "32",
           compile_: bool = False, encoder: str = "l2gcn") -> dict:
    return {
        "run": {"name": "bench", "seed": 0},
        "data": {"source": "synthetic", "synthetic": {"num_train": num_train, "num_test": 8, "num_labels": 24,
                                                      "image_dim": 4096, "text_dim": 1386}},
        "graph": {"kind": "cooccurrence", "node_features": "random"},
        "encoder": {"name": encoder, "num_layers": 5},
        "model": {"common_dim": 1024},
        "train": {"batch_size": batch, "epochs": 1, "device": device, "drop_last": True, "fused_optimizer": fused,
                  "precision": precision, "compile": compile_},
        "eval": {"select_on": "test"},
    }


def first_batch(trainer: Trainer, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return trainer.loader.dataset[list(range(batch))]


def step_flops(trainer: Trainer, batch: int) -> int:
    image, text, labels = first_batch(trainer, batch)
    with FlopCounterMode(display=False) as counter:
        output = trainer.model(image, text)
        total, _ = trainer.objective(output, labels)
        trainer.optimizer.zero_grad(set_to_none=True)
        total.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def throughput(batch: int, pairs: int, min_steps: int, device: str, fused: bool, precision: str = "32",
               compile_: bool = False, encoder: str = "l2gcn", linear: str = "auto") -> dict:
    steps = max(min_steps, -(-pairs // batch))
    num_train = steps * batch
    experiment = build_experiment(load_config(recipe(batch, num_train, device, fused, precision, compile_, encoder)))
    trainer = Trainer(experiment)
    if linear != "auto":  # float32 CPU products through oneDNN or the BLAS library, whatever this CPU prefers
        trainer.onednn = linear == "onednn" and experiment.device.type == "cpu" and precision == "32"
    flops = step_flops(trainer, batch)
    # warm-up: two optimizer steps on the first batch (the step as training runs it: autocast, compiled)
    image, text, labels = first_batch(trainer, batch)
    for _ in range(2):
        trainer.scaler.scale(trainer._call_forward_loss(image, text, labels)[0]).backward()
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
        trainer.optimizer.zero_grad(set_to_none=True)
    step_ends: list[float] = []
    trainer.optimizer.register_step_post_hook(lambda *args: (sync(experiment.device), step_ends.append(time.perf_counter())))
    mm_before = matmul_rate(experiment.device)  # the reference, measured right before ...
    sync(experiment.device)
    start = time.perf_counter()
    trainer.train_epoch()
    sync(experiment.device)
    seconds = time.perf_counter() - start
    mm_after = matmul_rate(experiment.device)  # ... and right after; the higher one counts
    mm_rate = max(mm_before, mm_after)
    step_seconds = [b - a for a, b in zip([start] + step_ends[:-1], step_ends)]
    median_step = statistics.median(step_seconds)
    rate = num_train / seconds  # judged on the whole epoch's wall time, not the median step
    gflops = flops * (steps / seconds) / 1e9
    return {"batch": batch, "adam": "fused" if fused else "foreach", "precision": precision, "compile": compile_,
            "encoder": encoder, "linear": "onednn" if trainer.onednn else "blas", "steps_timed": steps,
            "pairs_timed": num_train, "seconds": seconds,
            "samples_per_s": rate, "epoch_seconds_18015": EPOCH_PAIRS / rate, "gflop_per_step": flops / 1e9,
            "achieved_gflops": gflops, "mm_gflops": mm_rate, "mm_gflops_before": mm_before,
            "mm_gflops_after": mm_after, "ratio": gflops / mm_rate,
            "step_seconds": step_seconds, "median_step_ratio": flops / median_step / 1e9 / mm_rate}


def optimizer_comparison(device: str, repeats: int = 3) -> list[dict]:
    experiment = build_experiment(load_config(recipe(100, 200, device)))
    params = [p for p in list(experiment.model.parameters()) + list(experiment.objective.parameters())]
    numel = sum(p.numel() for p in params)
    rows = []
    for name, options in (("single-tensor", {"foreach": False}), ("foreach", {"foreach": True}),
                          ("fused", {"fused": True})):
        copies = [p.detach().clone().requires_grad_(True) for p in params]
        for c in copies:
            c.grad = torch.randn_like(c) * 1e-3
        try:
            opt = torch.optim.Adam(copies, lr=5e-5, betas=(0.5, 0.999), **options)
            opt.step()
        except (RuntimeError, TypeError) as err:
            rows.append({"adam": name, "error": str(err).splitlines()[0]})
            continue
        best = float("inf")
        for _ in range(repeats):
            sync(experiment.device)
            start = time.perf_counter()
            opt.step()
            sync(experiment.device)
            best = min(best, time.perf_counter() - start)
        rows.append({"adam": name, "parameters": numel, "step_ms": best * 1e3,
                     "bytes_moved_gb_per_s": numel * 4 * 7 / best / 1e9})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 2048])
    parser.add_argument("--pairs", type=int, default=2000, help="pairs timed per batch size (default 2000)")
    parser.add_argument("--min-steps", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-optimizers", action="store_true")
    parser.add_argument("--release-host-memory", action="store_true",
                        help="leave glibc's default (freed blocks of 32 MiB and more go back to the system), "
                             "as the library does")
    parser.add_argument("--fused", choices=["no", "yes", "both"], default="both",
                        help="train.fused_optimizer for the timed runs (default: both, side by side)")
    parser.add_argument("--precisions", nargs="+", default=["32"], help="train.precision values, side by side")
    parser.add_argument("--compile", choices=["no", "yes", "both"], default="no", help="train.compile")
    parser.add_argument("--encoder", default="l2gcn")
    parser.add_argument("--linear", choices=["auto", "blas", "onednn", "both"], default="auto",
                        help="float32 CPU linear layers: this CPU's preference (default), the BLAS library, oneDNN, "
                             "or both side by side")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu" and not args.release_host_memory:
        keep_freed_host_memory()  # what the `gcnretrieval run` command does
    info = machine()
    info["reuse_host_memory"] = device.type == "cpu" and not args.release_host_memory
    print(json.dumps({"machine": info}))
    rates = matmul_rates(device)
    mm = max(rates.values())
    print(json.dumps({"mm_gflops": rates}))
    rows = []
    variants = {"no": [False], "yes": [True], "both": [False, True]}[args.fused]
    compiles = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
    for batch in args.batches:
        linears = ["blas", "onednn"] if args.linear == "both" else [args.linear]
        for fused, precision, compile_, linear in ((f, p, c, k) for f in variants for p in args.precisions
                                                   for c in compiles for k in linears):
            row = throughput(batch, args.pairs, args.min_steps, args.device, fused, precision, compile_, args.encoder,
                             linear)
            row["load_1min"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps(row), flush=True)
    rates_after = matmul_rates(device)
    mm_after = max(rates_after.values())
    print(json.dumps({"mm_gflops_after": rates_after}))
    if not args.skip_optimizers:
        for row in optimizer_comparison(args.device):
            print(json.dumps(row))
    print()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, load {info['load_1min']:.2f}, "
          f"OMP_WAIT_POLICY {info['omp_wait_policy']}, freed host memory kept for reuse: {info['reuse_host_memory']}")
    print("float32 product 2048x4096 @ 4096x1024, GFLOP/s before / after: "
          + ", ".join(f"{name} {rates[name]:.1f} / {rates_after[name]:.1f}" for name in rates))
    print("| batch | Adam | precision | compile | linear | pairs timed | samples/s | s per 18,015-pair epoch "
          "| GFLOP/step | GFLOP/s | mm GFLOP/s | ratio | ratio at the median step | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['adam']} | {r['precision']} | {r['compile']} | {r['linear']} | "
              f"{r['pairs_timed']} | "
              f"{r['samples_per_s']:.0f} | {r['epoch_seconds_18015']:.1f} | "
              f"{r['gflop_per_step']:.1f} | {r['achieved_gflops']:.1f} | {r['mm_gflops']:.1f} | {r['ratio']:.0%} | "
              f"{r['median_step_ratio']:.0%} | {r['load_1min']:.1f} |")


if __name__ == "__main__":
    main()
