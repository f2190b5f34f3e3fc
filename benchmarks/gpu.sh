#!/usr/bin/env bash
# GPU benchmark: 40 epochs of MIRFlickr-shaped training (synthetic) and mAP of 2,000 queries
# against 200,000 items, with a same-seed CPU comparison of the mAP.
#
#   bash benchmarks/gpu.sh            # on a CUDA machine (about 3-6 minutes with the install)
#   bash benchmarks/gpu.sh --quick    # tiny shapes: checks the script end to end in ~1 minute
#   GCNRETRIEVAL_BENCH_DEVICE=cpu bash benchmarks/gpu.sh --quick   # dry run without a GPU
#
# Python: uses ./.venv when it already imports torch; otherwise creates it
# (`python3 -m venv .venv --system-site-packages`, so a preinstalled CUDA torch is reused)
# and installs the package with `pip install -e .` (torch from the index when missing;
# `--no-deps` is tried first so a machine without network access still works).
# Prints a markdown table at the end; JSON lines of each measurement are kept in $OUT
# (default: benchmarks/out/).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

DEVICE="${GCNRETRIEVAL_BENCH_DEVICE:-cuda}"
OUT="${OUT:-benchmarks/out}"
mkdir -p "$OUT"
START=$(date +%s)

# --- Python environment ---------------------------------------------------------------
PY=.venv/bin/python
if ! { [ -x "$PY" ] && "$PY" -c "import torch, gcnretrieval" 2>/dev/null; }; then
  python3 -m venv .venv --system-site-packages
  .venv/bin/pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || .venv/bin/pip install -q -e .
  "$PY" -c "import torch, torch_geometric, gcnretrieval" || .venv/bin/pip install -q -e .
fi
"$PY" - "$DEVICE" <<'PYEOF'
import sys, torch
device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device; set GCNRETRIEVAL_BENCH_DEVICE=cpu for a dry run")
name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
print(f"torch {torch.__version__}, device {device} ({name})")
PYEOF

if [ "$QUICK" = 1 ]; then
  EPOCHS=2; TRAIN=600; TEST=200; SIZES="2000 20000"; COMPARE_EPOCHS=1; COMPARE_TRAIN=300
else
  EPOCHS=40; TRAIN=18015; TEST=2000; SIZES="200000"; COMPARE_EPOCHS=2; COMPARE_TRAIN=18015
fi

# --- training: EPOCHS epochs on the device, then the same seed for a few epochs on both ----
"$PY" benchmarks/train_epochs.py --epochs "$EPOCHS" --device "$DEVICE" --num-train "$TRAIN" --num-test "$TEST" \
  --seed 0 | tee "$OUT/train_device.json"
"$PY" benchmarks/train_epochs.py --epochs "$COMPARE_EPOCHS" --device "$DEVICE" --num-train "$COMPARE_TRAIN" \
  --num-test "$TEST" --seed 1 | tee "$OUT/compare_device.json"
"$PY" benchmarks/train_epochs.py --epochs "$COMPARE_EPOCHS" --device cpu --num-train "$COMPARE_TRAIN" \
  --num-test "$TEST" --seed 1 | tee "$OUT/compare_cpu.json"

# --- evaluation: 2,000 queries x database sizes ------------------------------------------
# shellcheck disable=SC2086
"$PY" benchmarks/eval_map.py --sizes $SIZES --dim 64 --repeats 2 --device "$DEVICE" | tee "$OUT/eval.txt"

# --- table -------------------------------------------------------------------------------
"$PY" - "$OUT" "$(( $(date +%s) - START ))" <<'PYEOF'
import json, sys
from pathlib import Path
out, elapsed = Path(sys.argv[1]), sys.argv[2]
train = json.loads((out / "train_device.json").read_text().splitlines()[-1])
dev = json.loads((out / "compare_device.json").read_text().splitlines()[-1])
cpu = json.loads((out / "compare_cpu.json").read_text().splitlines()[-1])
evals = [json.loads(l) for l in (out / "eval.txt").read_text().splitlines() if l.startswith("{")]
print()
print(f"device: {train['device_name']}, torch {train['torch']}; script wall time {elapsed} s")
print("| measurement | value | target |")
print("|---|---|---|")
print(f"| {train['epochs']} epochs, {train['train_pairs']} pairs, batch {train['batch']}: total s (train + val) "
      f"| {train['seconds_total']:.1f} (steps {train['seconds_train_steps']:.1f}) | < 10 s |")
print(f"| test avg mAP after {train['epochs']} epochs (selected epoch {train['selected_epoch']}) "
      f"| {train['test']['avg_map']:.4f} | |")
print(f"| same seed, {dev['epochs']} epoch(s): avg mAP device vs cpu | {dev['test']['avg_map']:.4f} vs "
      f"{cpu['test']['avg_map']:.4f} (diff {dev['test']['avg_map'] - cpu['test']['avg_map']:+.4f}) | within noise |")
for e in evals:
    mem = e["peak_device_gb"] if e["peak_device_gb"] is not None else e["peak_rss_gb"]
    print(f"| mAP 2,000 x {e['database']:,} ({e['dim']}-d): s / floor / peak GB | {e['map_s']:.3f} s / "
          f"{e['ratio']:.2f}x / {mem:.2f} | < 2x, < 2 GB |")
PYEOF
