"""mAP@all of 2,000 queries against 2k / 20k / 200k database items, next to its floor.

Data: random unit-norm embeddings (``--dim``, default 64), 24 labels with each label
on independently with probability 3.8 / 24 (about 3.8 labels per item). The floor is
the part no mAP implementation can skip: the similarity product and the stable
descending sort of the same query chunks (``metrics`` chunking), without any
relevance or precision bookkeeping. The mAP time is
:func:`gcnretrieval.metrics.mean_average_precision` on the same data.

Every database size runs in a fresh subprocess, so the peak resident set size
(``resource.getrusage(...).ru_maxrss``) belongs to that size alone; it includes the
Python interpreter and torch (about 0.3-0.4 GB before any data).

Usage::

    python benchmarks/eval_map.py [--sizes 2000 20000 200000] [--dim 64] [--repeats 2]

Prints one JSON line per size and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

NUM_QUERIES = 2000
NUM_LABELS = 24
LABELS_PER_ITEM = 3.8


def measure(size: int, dim: int, repeats: int, device: str) -> dict:
    import torch
    import torch.nn.functional as F

    from gcnretrieval import metrics

    g = torch.Generator().manual_seed(size)
    p = LABELS_PER_ITEM / NUM_LABELS
    q = F.normalize(torch.randn(NUM_QUERIES, dim, generator=g), dim=1).to(device)
    d = F.normalize(torch.randn(size, dim, generator=g), dim=1).to(device)
    ql = (torch.rand(NUM_QUERIES, NUM_LABELS, generator=g) < p).float().to(device)
    dl = (torch.rand(size, NUM_LABELS, generator=g) < p).float().to(device)
    step = metrics._chunk_size(size, None, metrics.DEFAULT_MAX_CHUNK_BYTES)

    def sync() -> None:
        if q.device.type == "cuda":
            torch.cuda.synchronize(q.device)

    def floor() -> float:
        checksum = 0
        for start in range(0, NUM_QUERIES, step):
            scores = q[start:start + step] @ d.T
            order = torch.sort(scores, dim=1, descending=True, stable=True).indices
            checksum += int(order[:, 0].sum())
        return float(checksum)

    def full() -> float:
        return metrics.mean_average_precision(q, d, ql, dl)

    timings = {"floor": [], "map": []}
    value = None
    for _ in range(repeats):
        for name, fn in (("floor", floor), ("map", full)):
            sync()
            start = time.perf_counter()
            out = fn()
            sync()
            timings[name].append(time.perf_counter() - start)
            if name == "map":
                value = out
    floor_s, map_s = min(timings["floor"]), min(timings["map"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if q.device.type == "cuda":
        peak_device = torch.cuda.max_memory_allocated(q.device)
    else:
        peak_device = None
    return {"database": size, "queries": NUM_QUERIES, "dim": dim, "chunk_queries": step, "map": value,
            "floor_s": floor_s, "map_s": map_s, "ratio": map_s / floor_s, "peak_rss_gb": peak / 1e9,
            "peak_device_gb": None if peak_device is None else peak_device / 1e9,
            "load_1min": os.getloadavg()[0], "torch": torch.__version__, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.dim, args.repeats, args.device)))
        return
    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--one", str(size), "--dim", str(args.dim),
                   "--repeats", str(args.repeats), "--device", args.device]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(f"{NUM_QUERIES} queries, {args.dim}-d, {NUM_LABELS} labels, device {args.device}")
    print("| database | mAP | floor s (mm + sort) | mAP s | mAP / floor | peak RSS GB | load |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['database']:,} | {r['map']:.4f} | {r['floor_s']:.2f} | {r['map_s']:.2f} | {r['ratio']:.2f} | "
              f"{r['peak_rss_gb']:.2f} | {r['load_1min']:.1f} |")


if __name__ == "__main__":
    main()
