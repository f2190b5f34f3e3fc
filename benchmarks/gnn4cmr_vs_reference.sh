#!/usr/bin/env bash
# DAGNN and I-GNN-CON side by side with their public reference code (LivXue/GNN4CMR, MIT):
# identical inputs, identical weights (copied parameter by parameter), loss and gradients compared in
# float64, training steps timed alternately in float32 at the paper's batch size: STEPS pairs (default 40),
# one step of each per pair, and the median of the per-pair throughput ratios ours / reference with a 95 %
# interval and a verdict ("not slower": lower bound >= 0.97 and median >= 1.0; "slower": upper bound < 1.0;
# else "undecided"; benchmarks/paired_timing.py). Ours uses the trainer's optimizer (fused Adam); with
# PLAIN_ADAM=1 in the environment the reference's (torch.optim.Adam's defaults), to compare model and loss alone.
#   benchmarks/gnn4cmr_vs_reference.sh MIRROR_GIT_DIR [BATCH] [STEPS]
# MIRROR_GIT_DIR: the git directory of a fetched github:LivXue/GNN4CMR. Nothing is fetched: without it the
# script prints one line and exits 0. The reference's files are exported to a temporary directory, used and
# removed; they are never committed. DAGNN's reference is P_GNN of the AAAI-2021 release (commit 429141c), with
# its own training loss (train_model.calc_loss + calc_gan_loss); I-GNN-CON's is I_GNN of the TPAMI-2022 code
# (HEAD) with loss.py's cla_loss, soft_con_loss, gan_loss. Three mechanical edits let the exported code run
# here: .cuda() removed, np.float (gone from NumPy >= 1.24) read as np.float64, and the .float() cast in
# util.gen_adj removed so that the reference computes in float64 (identical in float32).
# Run from the project root; PY (default: .venv/bin/python, else python3) must import gcnretrieval and scipy.
set -u
M=${1:-}
B=${2:-100}; STEPS=${3:-40}
DAGNN_COMMIT=429141c
if [ -z "$M" ] || ! git --git-dir="$M" rev-parse HEAD >/dev/null 2>&1; then
  echo "gnn4cmr_vs_reference: skipped, no git directory of LivXue/GNN4CMR given (${M:-none})"; exit 0
fi
PROJ=${PROJ:-$(pwd)}
export PYTHONPATH="$PROJ${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's gcnretrieval, whatever is installed
PY=${PY:-$( [ -x "$PROJ/.venv/bin/python" ] && echo "$PROJ/.venv/bin/python" || echo python3 )}
"$PY" -c "import gcnretrieval, scipy, torchvision" 2>/dev/null \
  || { echo "gnn4cmr_vs_reference: skipped, $PY cannot import gcnretrieval, scipy and torchvision; set PY"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export_files() {  # commit dir files...
  local commit=$1 dir=$2; shift 2; mkdir -p "$T/$dir"
  for f in "$@"; do
    git --git-dir="$M" show "$commit:$f" | tr -d '\r' \
      | sed -e 's/\.cuda()//g' -e 's/np\.float)/np.float64)/g' -e 's/A\.sum(axis=1)\.float()/A.sum(axis=1)/' > "$T/$dir/$f"
  done
}
git --git-dir="$M" show HEAD:embedding/mirflickr-inp-glove6B.mat > "$T/inp.mat"
export_files HEAD tpami2022 model.py util.py loss.py
METHODS="ignn_con"
if git --git-dir="$M" cat-file -e "$DAGNN_COMMIT^{commit}" 2>/dev/null; then
  export_files "$DAGNN_COMMIT" aaai2021 model.py util.py train_model.py evaluate.py; METHODS="dagnn ignn_con"
else
  echo "gnn4cmr_vs_reference: the AAAI-2021 release ($DAGNN_COMMIT) is not in $M; DAGNN skipped"
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
for method in $METHODS; do
  (cd "$PROJ" && "$PY" benchmarks/gnn4cmr_vs_reference.py --reference "$T" --method "$method" --batch "$B" \
     --steps "$STEPS" ${PLAIN_ADAM:+--plain-adam} 2>"$T/$method.err") | grep '^{' || { echo "$method failed:"; tail -5 "$T/$method.err"; }
done
