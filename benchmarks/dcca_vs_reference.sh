#!/usr/bin/env bash
# DCCA side by side with a public PyTorch implementation (github.com/Michaelvll/DeepCCA, MIT): its CCA loss
# (objectives.py) and ours on IDENTICAL network outputs (fixed seeded float64 batches), value and gradients
# w.r.t. both views' outputs, in both of its modes (top-k singular values; "all" singular values), then the
# samples/s of one training step of each model at batch 800 (its network [1024, 1024, 1024, 10] in float64,
# as it builds it, against ours in float32 and float64), alternating A B A B.
# The peer's files are exported to a temp dir at run time (torch.symeig, removed from torch, is mapped to
# torch.linalg.eigh; nothing else is changed) and never committed anywhere.
#   benchmarks/dcca_vs_reference.sh [MIRROR_GIT_DIR] [STEPS]
# MIRROR_GIT_DIR: the git directory that fetching github:Michaelvll/DeepCCA returned. Run from the project root;
# PY (default: .venv/bin/python, else python3) must import gcnretrieval.
set -u
M=${1:-}
STEPS=${2:-10}
if [ -z "$M" ] || ! git --git-dir="$M" rev-parse HEAD >/dev/null 2>&1; then
  echo "reference absent: give the git directory of a fetched github:Michaelvll/DeepCCA; nothing compared"
  exit 0
fi
PROJ=${PROJ:-$(pwd)}
PY=${PY:-$( [ -x "$PROJ/.venv/bin/python" ] && echo "$PROJ/.venv/bin/python" || echo python3 )}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for f in objectives.py DeepCCAModels.py; do
  git --git-dir="$M" show HEAD:$f \
    | sed -e 's/\[D\([12]\), V\([12]\)\] = torch.symeig(\(SigmaHat[0-9]*\), eigenvectors=True)/D\1, V\2 = torch.linalg.eigh(\3)/' \
          -e 's/U, V = torch.symeig(trace_TT, eigenvectors=True)/U, V = torch.linalg.eigh(trace_TT)/' > "$T/$f"
done
cat > "$T/compare.py" <<'PYEOF'
import json, sys, time
import torch
sys.path.insert(0, sys.argv[1])
from objectives import cca_loss
from DeepCCAModels import DeepCCA
from gcnretrieval.losses.canonical_correlation import total_canonical_correlation_loss
from gcnretrieval.methods.dcca import DCCAModel, DCCAObjective
steps = int(sys.argv[2])
torch.manual_seed(0)
n, o = 800, 10
z = torch.randn(n, 4, dtype=torch.float64)
h1 = torch.cat([z, torch.randn(n, o - 4, dtype=torch.float64)], 1) @ torch.randn(o, o, dtype=torch.float64)
h2 = torch.cat([z + 0.5 * torch.randn(n, 4, dtype=torch.float64), torch.randn(n, o - 4, dtype=torch.float64)], 1)
R = 1e-3  # the reference's r1 = r2


# strongly correlated views: every canonical correlation near 1, where the reference's top-k mode (singular
# values as sqrt(eig(T^T T + r1 I))) and the paper's sum of singular values nearly coincide
g1 = torch.randn(n, o, dtype=torch.float64)
g2 = g1 @ torch.randn(o, o, dtype=torch.float64) + 0.05 * torch.randn(n, o, dtype=torch.float64)


def grads(fn, v1, v2):
    a, b = v1.clone().requires_grad_(True), v2.clone().requires_grad_(True)
    value = fn(a, b)
    value.backward()
    return float(value.detach()), a.grad, b.grad


def rel(x, y):
    return float((x - y).norm() / y.norm())


for mode, top_k, all_values, v1, v2 in (("top-k", o, False, h1, h2), ("all", None, True, h1, h2),
                                        ("top-k, all correlations near 1", o, False, g1, g2)):
    ref_value, ref1, ref2 = grads(cca_loss(o, all_values, torch.device("cpu")).loss, v1, v2)
    our_value, our1, our2 = grads(lambda a, b: total_canonical_correlation_loss(a, b, R, R, top_k), v1, v2)
    print(json.dumps({"mode": mode, "loss_ref": ref_value, "loss_ours": our_value,
                      "loss_rel_err": abs(our_value - ref_value) / abs(ref_value),
                      "grad_rel_err": max(rel(our1, ref1), rel(our2, ref2))}))

d1, d2 = 1280, 1386  # mirflickr-mini's image and text feature sizes
x1, x2 = torch.randn(n, d1), torch.randn(n, d2)


def reference_step():
    model = DeepCCA([1024, 1024, 1024, o], [1024, 1024, 1024, o], d1, d2, o, False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    a, b = x1.double(), x2.double()

    def step():
        opt.zero_grad()
        out1, out2 = model(a, b)
        loss = model.loss(out1, out2)
        loss.backward()
        opt.step()
    return step


def our_step(dtype):
    model = DCCAModel(d1, d2).to(dtype)
    objective = DCCAObjective()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    a, b = x1.to(dtype), x2.to(dtype)

    def step():
        opt.zero_grad()
        total, _ = objective(model(a, b), None)
        total.backward()
        opt.step()
    return step


def rate(step):
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return n * steps / (time.perf_counter() - start)


runs = {"reference float64": reference_step(), "ours float32": our_step(torch.float32),
        "ours float64": our_step(torch.float64)}
rates = {name: [] for name in runs}
for _ in range(2):  # alternating A B C A B C
    for name, step in runs.items():
        rates[name].append(rate(step))
best = {name: max(values) for name, values in rates.items()}
ref = best["reference float64"]
print(json.dumps({"batch": n, "samples_per_s": {k: round(v, 1) for k, v in best.items()},
                  "ratio_ours_float32": round(best["ours float32"] / ref, 2),
                  "ratio_ours_float64": round(best["ours float64"] / ref, 2)}))
PYEOF
cat > "$T/summary.py" <<'PYEOF'
import json, sys
parts = []
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "mode" in r:
        parts.append("%s: loss ref %.6f ours %.6f (rel err %.1e), grad rel err %.1e"
                     % (r["mode"], r["loss_ref"], r["loss_ours"], r["loss_rel_err"], r["grad_rel_err"]))
    else:
        rates = ", ".join("%s %.0f" % kv for kv in r["samples_per_s"].items())
        parts.append("batch %d samples/s: %s (ours/ref %sx float32, %sx float64)"
                     % (r["batch"], rates, r["ratio_ours_float32"], r["ratio_ours_float64"]))
print(" | ".join(parts) if parts else "the comparison failed; its error follows")
PYEOF
(cd "$PROJ" && PYTHONPATH="$PROJ${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$T/compare.py" "$T" "$STEPS" 2>"$T/stderr") | "$PY" "$T/summary.py" "$T/compare.py"
[ -s "$T/stderr" ] && grep -v Warning "$T/stderr" | tail -3 >&2
exit 0
