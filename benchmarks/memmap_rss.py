"""Peak memory of training on a memory-mapped NUS-WIDE-shaped ``.npy`` dataset.

Writes (in chunks, with ``np.lib.format.open_memmap``) a synthetic dataset of NUS-WIDE's
shapes to ``--dir``: 190,421 training pairs of 4,096-d float32 image features (3.1 GB)
and 1,000-d text features, 21 labels, plus a small test split. A fresh subprocess then
builds the experiment from the directory (memory-mapped; a 10 % validation split carved
as a row selection, not a copy), trains ``--steps`` batches of ``--batch`` with the
trainer's own step (Adam, depth-5 ``l2gcn``, common dimension 1,024), and embeds the
carved validation split once. The directory is deleted afterwards unless ``--keep``.

Memory figures (from ``/proc/self/status``, sampled every 20 ms):

- ``peak_anon``: the peak of ``RssAnon``, memory the process owns (model, optimizer,
  batches, temporaries): what has to fit in RAM;
- ``peak_rss`` (``VmHWM``): resident set including file-backed pages of the memory map,
  i.e. the page cache the kernel may drop at any time.

Usage::

    python benchmarks/memmap_rss.py [--dir /tmp/gcnr_nuswide] [--steps 100] [--batch 100]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

NUM_TRAIN, NUM_TEST, IMAGE_DIM, TEXT_DIM, NUM_LABELS = 190_421, 2_000, 4_096, 1_000, 21

def write_dataset(directory: Path, num_train: int, chunk: int = 8192) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = 0
    for split, rows in (("train", num_train), ("test", NUM_TEST)):
        labels = (rng.random((rows, NUM_LABELS)) < 2.5 / NUM_LABELS).astype(np.float32)
        labels[np.arange(rows), rng.integers(0, NUM_LABELS, rows)] = 1.0  # every pair has a label
        np.save(directory / f"lab_{split}.npy", labels)
        mixing = {"img": rng.standard_normal((NUM_LABELS, IMAGE_DIM)).astype(np.float32),
                  "txt": rng.standard_normal((NUM_LABELS, TEXT_DIM)).astype(np.float32)}
        for modality, dim in (("img", IMAGE_DIM), ("txt", TEXT_DIM)):
            path = directory / f"{modality}_{split}.npy"
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
            for start in range(0, rows, chunk):
                stop = min(rows, start + chunk)
                block = labels[start:stop] @ mixing[modality]
                block += rng.standard_normal(block.shape, dtype=np.float32)
                out[start:stop] = block
            out.flush()
            del out
            written += path.stat().st_size
    return written

def _status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) * 1024
    return values

def train_in_this_process(directory: Path, steps: int, batch: int) -> dict:
    import torch

    from gcnretrieval.config import load_config
    from gcnretrieval.data.rows import is_lazy
    from gcnretrieval.training import Trainer, build_experiment, embed_split

    peak = {"anon": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["anon"] = max(peak["anon"], _status()["RssAnon"])
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    recipe = {
        "run": {"name": "memmap", "seed": 0},
        "data": {"path": str(directory)},
        "graph": {"kind": "cooccurrence", "node_features": "random"},
        "encoder": {"name": "l2gcn", "num_layers": 5},
        "model": {"common_dim": 1024},
        "train": {"batch_size": batch, "epochs": 1, "device": "cpu"},
        "eval": {"select_on": "val", "val_fraction": 0.1},
    }
    start = time.perf_counter()
    experiment = build_experiment(load_config(recipe))
    built = _status()
    trainer = Trainer(experiment)
    lazy = {name: is_lazy(split.image) for name, split in experiment.dataset.splits()}

    class Capped:  # the first `steps` batches of the epoch, read one at a time
        def __init__(self, loader) -> None:
            self.loader = loader

        def __iter__(self):
            return itertools.islice(iter(self.loader), steps)

        def __len__(self) -> int:
            return steps

    trainer.loader = Capped(trainer.loader)
    losses = trainer.train_epoch()
    trained = time.perf_counter() - start
    image, text = embed_split(experiment.model, experiment.dataset.val, batch_size=1024)
    done.set()
    sampler.join()
    final = _status()
    return {"steps": steps, "batch": batch, "train_pairs": len(experiment.dataset.train),
            "val_pairs": len(experiment.dataset.val), "lazy_image_splits": lazy, "loss_total": losses["loss_total"],
            "seconds": trained, "peak_anon_gb": max(peak["anon"], final["RssAnon"]) / 1e9,
            "peak_rss_gb": final["VmHWM"] / 1e9, "rss_file_end_gb": final["RssFile"] / 1e9,
            "anon_after_build_gb": built["RssAnon"] / 1e9, "val_embedding": list(image.shape),
            "torch": torch.__version__, "load_1min": os.getloadavg()[0]}

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/gcnr_nuswide")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--num-train", type=int, default=NUM_TRAIN)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    directory = Path(args.dir)
    if args.child:
        print(json.dumps(train_in_this_process(directory, args.steps, args.batch)))
        return
    need = args.num_train * (IMAGE_DIM + TEXT_DIM + NUM_LABELS) * 4
    free = shutil.disk_usage(directory.parent).free
    if free < 1.2 * need:
        sys.exit(f"need {need / 1e9:.1f} GB free in {directory.parent}, have {free / 1e9:.1f} GB")
    try:
        started = time.perf_counter()
        size = write_dataset(directory, args.num_train)
        image_bytes = (directory / "img_train.npy").stat().st_size
        print(json.dumps({"written_gb": size / 1e9, "image_train_gb": image_bytes / 1e9,
                          "write_seconds": time.perf_counter() - started}), flush=True)
        command = [sys.executable, __file__, "--child", "--dir", str(directory), "--steps", str(args.steps),
                   "--batch", str(args.batch)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        out = done.stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["files_gb"] = size / 1e9
        row["peak_anon_over_files"] = row["peak_anon_gb"] / row["files_gb"]
        print(json.dumps(row))
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)

if __name__ == "__main__":
    main()
