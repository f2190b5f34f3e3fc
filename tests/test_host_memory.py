"""Host-memory reuse: the glibc setting, and that run applies it only when asked."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from gcnretrieval import runner
from gcnretrieval.training import host_memory

_PROBE = """
import torch
from gcnretrieval.training.host_memory import keep_freed_host_memory
import resource

def faults_for_fresh_blocks():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.empty(4096, 4096).fill_(1.0)  # 64 MiB, above glibc's largest mmap threshold
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_for_fresh_blocks()
default = faults_for_fresh_blocks()
applied = keep_freed_host_memory()
faults_for_fresh_blocks()
kept = faults_for_fresh_blocks()
print(applied, default, kept)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting exists on glibc only")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout.split()
    applied, default, kept = out[0] == "True", int(out[1]), int(out[2])
    assert applied
    # 5 x 64 MiB of fresh pages is ~80k faults of 4 KiB; reused blocks fault almost never
    assert default > 40_000
    assert kept < default / 10


def _tiny_recipe(reuse: bool) -> dict:
    return {
        "run": {"name": "tiny", "seed": 0},
        "data": {"source": "synthetic", "synthetic": {"num_train": 20, "num_test": 6, "num_labels": 4,
                                                      "image_dim": 10, "text_dim": 8}},
        "graph": {"node_features": "random", "node_feature_dim": 5, "threshold": 0.3},
        "encoder": {"num_layers": 1},
        "model": {"common_dim": 8},
        "train": {"epochs": 1, "batch_size": 10, "device": "cpu", "reuse_host_memory": reuse},
    }


@pytest.mark.parametrize("reuse", [True, False])
def test_run_applies_it_on_cpu_only_when_asked(tmp_path, monkeypatch, reuse):
    calls = []
    monkeypatch.setattr(host_memory, "keep_freed_host_memory", lambda: calls.append(1) or True)
    runner.run(_tiny_recipe(reuse), out=tmp_path / "run", progress=False)
    assert len(calls) == (1 if reuse else 0)
