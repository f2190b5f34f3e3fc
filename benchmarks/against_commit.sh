#!/usr/bin/env bash
# This checkout against an earlier commit, side by side in one sitting: training throughput at batch 100
# (benchmarks/train_throughput.py, the two trees in turn, ROUNDS rounds each) and the demo run's test mAP
# (`gcnretrieval run recipes/demo.toml`, each tree its own recipe file, same seed).
#
#   bash benchmarks/against_commit.sh REV [ROUNDS]      # e.g. REV = the commit before a refactor
#
# REV is exported with `git archive` to a temporary folder (removed at the end) and imported through
# PYTHONPATH with this checkout's Python, so both trees run on the same interpreter and libraries.
# Prints one line per throughput measurement and per demo run, then the medians, and the median of the
# per-round new/old ratios with its 95 % interval and verdict (benchmarks/paired_timing.py); who goes
# first alternates from round to round.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?give the commit to compare with, e.g. HEAD~5}
ROUNDS=${2:-3}
PY=${PY:-$( [ -x .venv/bin/python ] && echo "$(pwd)/.venv/bin/python" || command -v python3 )}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/old"
git archive "$REV" | tar -x -C "$T/old"
NEW=$(pwd)
throughput() {  # tree
  (cd "$1" && PYTHONPATH="$1" "$PY" benchmarks/train_throughput.py --batches 100 --pairs 2000 \
     --skip-optimizers --fused yes 2>/dev/null | grep '"samples_per_s"' | head -1)
}
for round in $(seq "$ROUNDS"); do
  order="old new"; [ $((round % 2)) = 0 ] && order="new old"  # who goes first alternates: no order bias
  for tree in $order; do
    dir=$T/old; [ $tree = new ] && dir=$NEW
    rate=$(throughput "$dir" | "$PY" -c 'import json,sys; print(round(json.loads(sys.stdin.read())["samples_per_s"], 1))')
    echo "throughput round $round $tree ($REV if old): $rate samples/s"
    echo "$round $tree $rate" >> "$T/rates"
  done
done
for tree in old new; do
  dir=$T/old; [ $tree = new ] && dir=$NEW
  (cd "$T" && PYTHONPATH="$dir" "$PY" -m gcnretrieval run "$dir/recipes/demo.toml" --out "$T/demo_$tree" >/dev/null 2>&1)
  echo "demo $tree: $("$PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["test"]; print(" ".join(f"{k} {v:.4f}" for k,v in t.items()))' "$T/demo_$tree/final_metrics.json")"
done
"$PY" - "$T/rates" <<'PYEOF'
import statistics, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from paired_timing import median_interval, verdict
rates = {}
for line in open(sys.argv[1]):
    round_, tree, rate = line.split()
    rates.setdefault(tree, {})[round_] = float(rate)
old, new = statistics.median(rates["old"].values()), statistics.median(rates["new"].values())
print(f"median samples/s: old {old:.1f}, new {new:.1f}, new/old {new / old:.3f}")
ratios = [rates["new"][r] / rates["old"][r] for r in rates["old"]]
median, low, high = median_interval(np.asarray(ratios))
print(f"paired new/old per round: median {median:.3f}, 95 % interval [{low:.3f}, {high:.3f}]: "
      f"{verdict(low, median, high)}")
PYEOF
