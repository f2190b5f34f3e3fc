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

def in_heap(address):
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            return low <= address < high
    return False

x = torch.empty(4096, 4096)  # 64 MiB: above glibc's largest mmap threshold
default_in_heap = in_heap(x.data_ptr())
del x
applied = keep_freed_host_memory()
y = torch.empty(4096, 4096)
print(applied, default_in_heap, in_heap(y.data_ptr()))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting exists on glibc only")
def test_large_blocks_come_from_the_heap_once_applied():
    """By default glibc maps a 64 MiB block separately (and unmaps it when freed); with the
    setting it comes from the heap, which keeps freed blocks for the next allocation."""
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "True"]


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
