#!/usr/bin/env bash
# Side-by-side training speed: the public I-GNN reference code (LivXue/GNN4CMR, MIT; the paper's baseline and
# code base) against gcnretrieval, same shapes (MIRFlickr: 4096-d image, 1386-d text, 24 labels, depth 5, d 1024),
# same batch, same machine, alternating A B A B. The peer's code is exported to a temp dir with .cuda() removed;
# it is never committed anywhere. Prints samples/s for both and the ratio.
# Whole training runs of ours (gcnretrieval.run, gcn and l2gcn encoders) against the reference's own step;
# benchmarks/gnn4cmr_vs_reference.sh compares the I-GNN-CON preset step for step on shared weights.
#   benchmarks/ignn_vs_ours.sh MIRROR_GIT_DIR [BATCH] [STEPS]
# MIRROR_GIT_DIR: the git directory of a fetched github:LivXue/GNN4CMR. Nothing is fetched: without it the
# script prints one line and exits 0.
# Run from the project root; PY (default: .venv/bin/python, else python3) must import gcnretrieval and scipy.
set -u
M=${1:-}
B=${2:-100}; STEPS=${3:-30}
if [ -z "$M" ] || ! git --git-dir="$M" rev-parse HEAD >/dev/null 2>&1; then
  echo "ignn_vs_ours: skipped, no git directory of LivXue/GNN4CMR given (${M:-none})"; exit 0
fi
PROJ=${PROJ:-$(pwd)}
export PYTHONPATH="$PROJ${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's gcnretrieval, whatever is installed
PY=${PY:-$( [ -x "$PROJ/.venv/bin/python" ] && echo "$PROJ/.venv/bin/python" || echo python3 )}
"$PY" -c "import gcnretrieval, scipy" 2>/dev/null || { echo "$PY cannot import gcnretrieval and scipy; set PY to the project's Python"; exit 1; }
T=$(mktemp -d)
for f in model.py loss.py util.py; do git --git-dir="$M" show HEAD:$f | sed 's/\.cuda()//g' > "$T/$f"; done
git --git-dir="$M" show HEAD:embedding/mirflickr-inp-glove6B.mat > "$T/inp.mat"
cat > "$T/peer.py" <<'PYEOF'
import sys, time, torch, json
from scipy.io import loadmat
sys.path.insert(0, sys.argv[1])
from model import I_GNN
from loss import cla_loss, soft_con_loss, gan_loss
B, STEPS = int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
inp = torch.FloatTensor(loadmat(sys.argv[1] + "/inp.mat")["inp"])
model = I_GNN(img_input_dim=4096, text_input_dim=1386, num_classes=24, t=0.4, k=8, inp=inp, GNN="GCN", n_layers=5)
opt = torch.optim.Adam(model.parameters(), lr=5e-5, betas=(0.5, 0.999))
imgs, txts = torch.randn(B, 4096).relu(), (torch.rand(B, 1386) < 0.005).float()
labels = (torch.rand(B, 24) < 0.16).float(); labels[:, 0] = 1
def step():
    opt.zero_grad()
    v1, v2, p1, p2, _, a, b, c, d = model(imgs, txts)
    loss = 0.5 * cla_loss(p1, p2, labels, labels) + soft_con_loss(v1, v2, labels, 0.22, 0.14) + 2 * gan_loss(a, b, c, d)
    loss.backward(); opt.step(); return loss.item()
model.train(); step(); step()
t = time.perf_counter()
for _ in range(STEPS): step()
dt = time.perf_counter() - t
print(json.dumps({"who": "I-GNN reference", "batch": B, "samples_per_s": B * STEPS / dt,
                  "params_M": sum(p.numel() for p in model.parameters()) / 1e6}))
PYEOF
cat > "$T/ours.py" <<'PYEOF'
import sys, json, tempfile, statistics
import gcnretrieval
enc, B, STEPS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recipe = {"run": {"name": "peer", "seed": 0},
          "data": {"source": "synthetic", "synthetic": {"num_train": B * STEPS, "num_test": 8, "num_labels": 24,
                                                        "image_dim": 4096, "text_dim": 1386}},
          "graph": {"kind": "cooccurrence", "node_features": "random"}, "encoder": {"name": enc, "num_layers": 5},
          "model": {"common_dim": 1024}, "train": {"batch_size": B, "epochs": 3, "device": "cpu", "drop_last": True},
          "eval": {"select_on": "test"}}
with tempfile.TemporaryDirectory() as scratch:                                # the run directory is removed after
    result = gcnretrieval.run(recipe, out=scratch + "/run", progress=False)
seconds = statistics.median(row["seconds"] for row in result.history[1:])   # epoch 1 is the warm-up
print(json.dumps({"who": "gcnretrieval " + enc, "batch": B, "samples_per_s": B * STEPS / seconds}))
PYEOF
run_peer() { "$PY" "$T/peer.py" "$T" "$B" "$STEPS" 2>/dev/null | tail -1; }
run_ours() { (cd "$PROJ" && "$PY" "$T/ours.py" "$1" "$B" "$STEPS" 2>/dev/null) | tail -1; }
{ run_peer; run_ours gcn; run_ours l2gcn; run_peer; run_ours gcn; run_ours l2gcn; } | tee "$T/results.jsonl"
"$PY" - "$T/results.jsonl" <<'PYEOF'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
med = {w: statistics.median(r["samples_per_s"] for r in rows if r["who"] == w) for w in dict.fromkeys(r["who"] for r in rows)}
peer = med.pop("I-GNN reference")
print(f"batch {rows[0]['batch']}: I-GNN reference {peer:.0f} samples/s | " + " | ".join(f"{w} {v:.0f} ({v/peer:.2f}x)" for w, v in med.items()))
PYEOF
rm -rf "$T"
