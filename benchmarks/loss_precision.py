"""Worst relative errors of the pairwise losses from float16 / bfloat16 embeddings.

Runs the cases of ``tests/test_losses_precision.py`` (``.half()`` / ``.bfloat16()``
embeddings, and float32 ones out of a Linear layer under ``torch.autocast``; Circle at
gamma 16, 64, 256 with both reductions, soft contrastive at tau 0.02, 0.05, 0.1, 0.22,
Circle-Soft at (16, 0.22) and (256, 0.02); fused kernels and the op-by-op path) over
several seeds, against the float64 plain-loop references on the rounded embeddings, and
prints the largest relative error of the value and of the gradients per dtype, mode and
path, next to the tests' tolerances.

Usage::

    python benchmarks/loss_precision.py [--seeds 5]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_losses_precision as cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({"torch": torch.__version__, "seeds": args.seeds,
                      "value_tol": cases.VALUE_TOL, "grad_tol": "u + %g" % cases.GRAD_TOL32}))
    print()
    print("| dtype | mode | path | loss | worst value rel. error | worst gradient rel. error | u (unit roundoff) |")
    print("|---|---|---|---|---|---|---|")
    for dtype in cases.HALF_DTYPES:
        for mode in cases.MODES:
            for fused in (True, False):
                worst: dict[str, list[float]] = {"circle": [0.0, 0.0], "soft": [0.0, 0.0], "circle_soft": [0.0, 0.0]}
                for seed in range(args.seeds):
                    runs = [("circle", cases.circle_errors(dtype, mode, fused, g, r, seed))
                            for g in cases.GAMMAS for r in ("global", "per_anchor")]
                    runs += [("soft", cases.soft_errors(dtype, mode, fused, tau, seed)) for tau in cases.TAUS]
                    runs += [("circle_soft", cases.circle_soft_errors(dtype, mode, fused, g, tau, seed))
                             for g, tau in ((16.0, 0.22), (256.0, 0.02))]
                    for name, (value_error, grad_error) in runs:
                        worst[name][0] = max(worst[name][0], value_error)
                        worst[name][1] = max(worst[name][1], grad_error)
                for name, (value_error, grad_error) in worst.items():
                    print(f"| {str(dtype).removeprefix('torch.')} | {mode} | {'fused' if fused else 'op by op'} | "
                          f"{name} | {value_error:.1e} | {grad_error:.2e} | {cases.unit_roundoff(dtype):.2e} |",
                          flush=True)


if __name__ == "__main__":
    main()
