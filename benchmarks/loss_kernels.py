"""Circle-Soft loss, forward + backward: the fused kernels next to the same formulas op by op.

The op-by-op version is the package's reference path, ``CircleSoftLoss(fused=False)``:
the loss as autograd sees it when each formula is written with tensor operations (masked
log-sum-exps, ``torch.where``, separate similarity products per term). It was the
package's implementation before ``gcnretrieval/losses/pair_kernels.py``. Both run on the
same random embeddings (d = 1,024, 24 labels, about 3.8 labels per item) in float32 in
the same process; the table gives the best of ``--repeats`` timings, the speed-up, and the
largest relative difference of the loss and of the gradients between the two.

Usage::

    python benchmarks/loss_kernels.py [--batches 100 2048] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import Tensor

from gcnretrieval.losses import CircleSoftLoss
from gcnretrieval.training import cpu_model

M, GAMMA, TAU, GAMMA_S, THETA = 0.25, 16.0, 0.22, 0.14, 0.6


# ------------------------------------------------------------------------- timing
class _Output:
    def __init__(self, image: Tensor, text: Tensor) -> None:
        self.image_embedding, self.text_embedding = image, text


def _circle_soft(img: Tensor, txt: Tensor, labels: Tensor, fused_kernels: bool) -> Tensor:
    loss = CircleSoftLoss(theta=THETA, m=M, gamma=GAMMA, temperature=TAU, intra_weight=GAMMA_S, fused=fused_kernels)
    return loss(_Output(img, txt), labels)


def fused(img: Tensor, txt: Tensor, labels: Tensor) -> Tensor:
    return _circle_soft(img, txt, labels, True)


def circle_soft_op_by_op(img: Tensor, txt: Tensor, labels: Tensor) -> Tensor:
    return _circle_soft(img, txt, labels, False)


def value_and_grads(loss_fn, img: Tensor, txt: Tensor, labels: Tensor) -> tuple[float, Tensor, Tensor]:
    img, txt = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
    loss = loss_fn(img, txt, labels)
    loss.backward()
    return float(loss.detach()), img.grad, txt.grad


def best_time(loss_fn, img: Tensor, txt: Tensor, labels: Tensor, repeats: int) -> float:
    value_and_grads(loss_fn, img, txt, labels)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        value_and_grads(loss_fn, img, txt, labels)
        best = min(best, time.perf_counter() - start)
    return best


def relative(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "load_1min": os.getloadavg()[0], "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}))
    rows = []
    for n in args.batches:
        gen = torch.Generator().manual_seed(n)
        img, txt = torch.randn(n, 1024, generator=gen), torch.randn(n, 1024, generator=gen)
        labels = (torch.rand(n, 24, generator=gen) < 3.8 / 24).float()
        ours = value_and_grads(fused, img, txt, labels)
        base = value_and_grads(circle_soft_op_by_op, img, txt, labels)
        row = {"batch": n, "op_by_op_ms": 1e3 * best_time(circle_soft_op_by_op, img, txt, labels, args.repeats),
               "fused_ms": 1e3 * best_time(fused, img, txt, labels, args.repeats),
               "loss_rel_diff": abs(ours[0] - base[0]) / abs(base[0]),
               "grad_rel_diff": max(relative(ours[1], base[1]), relative(ours[2], base[2]))}
        row["speedup"] = row["op_by_op_ms"] / row["fused_ms"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| batch | op by op, ms | fused, ms | speed-up | loss rel. diff | gradient rel. diff |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['op_by_op_ms']:.1f} | {r['fused_ms']:.1f} | {r['speedup']:.2f}x | "
              f"{r['loss_rel_diff']:.1e} | {r['grad_rel_diff']:.1e} |")


if __name__ == "__main__":
    main()
