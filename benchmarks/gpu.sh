#!/usr/bin/env bash
# GPU benchmark, one prepared run of under 10 minutes: 40 MIRFlickr-shaped and 40 NUS-WIDE-shaped epochs
# (synthetic data) in float32, TF32 and bf16, eager and compiled; the mAP of 2,000 queries against 200,000
# items; a same-seed CPU run for the mAP; one table next to the paper's 481 s (40 MIRFlickr epochs).
#
#   bash benchmarks/gpu.sh            # on a CUDA machine
#   bash benchmarks/gpu.sh --quick    # tiny shapes: checks the script end to end in a few minutes
#   GCNRETRIEVAL_BENCH_DEVICE=cpu bash benchmarks/gpu.sh --quick   # dry run without a GPU
#
# Python: ./.venv when it imports torch and gcnretrieval, else the machine's python3 with this checkout on
# PYTHONPATH (a GPU image holds torch and torch_geometric; nothing is installed). Variants that would start
# past the time budget are skipped and listed as such. JSON lines of every measurement go to $OUT
# (default: benchmarks/out/).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

DEVICE="${GCNRETRIEVAL_BENCH_DEVICE:-cuda}"
OUT="${OUT:-benchmarks/out}"
mkdir -p "$OUT"
START=$(date +%s)
export PYTHONUNBUFFERED=1

PY=.venv/bin/python
if ! { [ -x "$PY" ] && "$PY" -c "import torch, gcnretrieval" 2>/dev/null; }; then
  PY=python3
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" - "$DEVICE" <<'PYEOF'
import sys, torch, gcnretrieval.training
device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device; set GCNRETRIEVAL_BENCH_DEVICE=cpu for a dry run")
name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
print(f"torch {torch.__version__}, device {device} ({name})")
PYEOF

VARIANTS="32 tf32 bf16 32+compile tf32+compile bf16+compile"
if [ "$DEVICE" = cpu ]; then VARIANTS="32 bf16 32+compile"; fi  # TF32 is a CUDA mode
if [ "$QUICK" = 1 ]; then
  EPOCHS=2; MIR=600; NUS=3000; TEST=200; SIZES="2000 20000"; CPU_PAIRS=300; BUDGET=400
else
  EPOCHS=40; MIR=18015; NUS=188421; TEST=2000; SIZES="200000"; CPU_PAIRS=18015; BUDGET=420
fi

# --- training: every variant on the same data, within the time budget ---------------------
# shellcheck disable=SC2086
"$PY" benchmarks/train_epochs.py --shape mirflickr --pairs "$MIR" --epochs "$EPOCHS" --device "$DEVICE" \
  --num-test "$TEST" --variants $VARIANTS --budget "$BUDGET" | tee "$OUT/train_mirflickr.jsonl"
LEFT=$(( BUDGET - ($(date +%s) - START) ))
# shellcheck disable=SC2086
"$PY" benchmarks/train_epochs.py --shape nuswide --pairs "$NUS" --epochs "$EPOCHS" --device "$DEVICE" \
  --num-test "$TEST" --variants $VARIANTS --budget "$(( LEFT > 0 ? LEFT : 0 ))" | tee "$OUT/train_nuswide.jsonl"

# --- the same seed for 2 epochs on the CPU, for the mAP --------------------------------------
"$PY" benchmarks/train_epochs.py --shape mirflickr --pairs "$CPU_PAIRS" --epochs 2 --device cpu --num-test "$TEST" \
  --variants 32 | tee "$OUT/compare_cpu.jsonl"
"$PY" benchmarks/train_epochs.py --shape mirflickr --pairs "$CPU_PAIRS" --epochs 2 --device "$DEVICE" \
  --num-test "$TEST" --variants 32 bf16 | tee "$OUT/compare_device.jsonl"

# --- evaluation: 2,000 queries x database sizes ------------------------------------------
# shellcheck disable=SC2086
"$PY" benchmarks/eval_map.py --sizes $SIZES --dim 64 --repeats 2 --device "$DEVICE" | tee "$OUT/eval.txt"

# --- table -------------------------------------------------------------------------------
"$PY" - "$OUT" "$(( $(date +%s) - START ))" <<'PYEOF'
import json, sys
from pathlib import Path
out, elapsed = Path(sys.argv[1]), sys.argv[2]
lines = lambda name: [json.loads(l) for l in (out / name).read_text().splitlines() if l.startswith("{")]
rows = lines("train_mirflickr.jsonl") + lines("train_nuswide.jsonl")
cpu, dev = lines("compare_cpu.jsonl"), lines("compare_device.jsonl")
evals = [json.loads(l) for l in (out / "eval.txt").read_text().splitlines() if l.startswith("{")]
print()
print(f"device: {rows[0]['device_name']}, torch {rows[0]['torch']}; script wall time {elapsed} s")
print("| shape | variant | epochs | train pairs | total s (train + val) | first epoch s | test mAP | target |")
print("|---|---|---|---|---|---|---|---|")
targets = {"mirflickr": "< 5 s (paper: 481 s on an RTX 4060 Ti)", "nuswide": "< 60 s"}
for r in rows:
    if "skipped" in r:
        print(f"| {r['shape']} | {r['variant']} | {r['epochs']} | {r['train_pairs']} | skipped ({r['skipped']}) | | | |")
        continue
    print(f"| {r['shape']} | {r['variant']} | {r['epochs']} | {r['train_pairs']} | {r['seconds_total']:.1f} | "
          f"{r['seconds_first_epoch']:.1f} | {r['test']['avg_map']:.4f} | {targets[r['shape']]} |")
for d in dev:
    print(f"| mirflickr, same seed, 2 epochs: {d['variant']} on {d['device']} vs 32 on cpu | | | | | | "
          f"{d['test']['avg_map']:.4f} vs {cpu[0]['test']['avg_map']:.4f} "
          f"({d['test']['avg_map'] - cpu[0]['test']['avg_map']:+.4f}) | within noise |")
for e in evals:
    mem = e["peak_device_gb"] if e["peak_device_gb"] is not None else e["peak_rss_gb"]
    print(f"| mAP 2,000 x {e['database']:,} ({e['dim']}-d): {e['map_s']:.3f} s, {e['ratio']:.2f}x the floor, "
          f"peak {mem:.2f} GB | | | | | | | < 2x, < 2 GB |")
PYEOF
