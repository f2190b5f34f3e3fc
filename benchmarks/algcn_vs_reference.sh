#!/usr/bin/env bash
# Side by side: the public ALGCN code (LivXue/ALGCN; model.py, train_model.py, util.py, gen_occurrence_adj.py)
# against gcnretrieval's `algcn` method, on identical inputs with identical weights.
#   benchmarks/algcn_vs_reference.sh MIRROR_GIT_DIR [BATCH] [STEPS]
# MIRROR_GIT_DIR: the git directory of a fetched github:LivXue/ALGCN. Run from the project root; PY (default:
# .venv/bin/python, else python3) must import gcnretrieval, scipy and torchvision.
#
# 1. Agreement, float64, one fixed seeded batch (MIRFlickr shapes: 4096-d image, 1386-d text, 24 labels, d 1024):
#    the reference computes its co-occurrence prior with its own gen_occurrence_adj.py + gen_A from the same
#    training labels as our graph builder; every parameter is copied from the reference to ours by an explicit
#    name map (B is stored as B / 100 in ours, see AdaptiveCooccurrenceGraph); both draw the self-supervision
#    masks from the same seed. Ours runs with the code-parity options (model.self_loop_weight = 1.5,
#    loss.transpose_prior = true). Prints |L_ours - L_ref| / |L_ref| and max over parameters of
#    ||g_ours - g_ref|| / ||g_ref||; then the loss with our defaults, to size those two differences.
# 2. Speed, float32: training steps (forward, loss, backward, Adam; ours with the optimizer our trainer builds,
#    fused Adam) of both at BATCH (default 100, the paper's MIRFlickr batch), STEPS pairs (default 40) of one
#    step of each, who goes first alternating; median samples/s, and the median of the per-pair throughput
#    ratios ours / reference with a 95 % interval and a verdict: "not slower" when the interval's lower bound
#    is >= 0.97 and the median >= 1.0, "slower" when its upper bound is < 1.0, else "undecided"
#    (benchmarks/paired_timing.py). PLAIN_ADAM=1 in the environment gives ours the reference's optimizer
#    (torch.optim.Adam's defaults), to compare model and loss alone.
# The reference files are exported to a temp dir at run time (`.cuda()` removed; `np.float` -> `np.float64` for
# current numpy; gen_adj's `.float()` cast removed so it runs in float64); they are never committed.
set -u
M=${1:-}
B=${2:-100}; STEPS=${3:-40}
if [ -z "$M" ] || ! git --git-dir="$M" rev-parse HEAD >/dev/null 2>&1; then
  echo "algcn_vs_reference: no reference git directory given or found (${M:-none}); skipped"; exit 0
fi
PROJ=${PROJ:-$(pwd)}
PY=${PY:-$( [ -x "$PROJ/.venv/bin/python" ] && echo "$PROJ/.venv/bin/python" || echo python3 )}
"$PY" -c "import gcnretrieval, scipy, torchvision" 2>/dev/null || { echo "$PY cannot import gcnretrieval, scipy and torchvision; set PY"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for f in model.py train_model.py util.py evaluate.py gen_occurrence_adj.py; do
  git --git-dir="$M" show HEAD:$f | sed -e 's/\.cuda()//g' -e 's/np\.float)/np.float64)/g' \
    -e 's/A\.sum(axis=1)\.float()/A.sum(axis=1)/' > "$T/$f"
done
git --git-dir="$M" show HEAD:embedding/mirflickr-inp-glove6B.mat > "$T/inp.mat"

cat > "$T/side_by_side.py" <<'PYEOF'
import contextlib, io, json, os, subprocess, sys
import numpy as np, torch
from scipy.io import loadmat, savemat
T, B, STEPS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path[:0] = [T, os.getcwd(), os.path.join(os.getcwd(), "benchmarks")]  # the reference files, this checkout
with contextlib.redirect_stdout(io.StringIO()):       # train_model.py prints versions on import
    from model import ALGCN
    from train_model import calc_loss
from gcnretrieval.graphs import build_label_graph
from gcnretrieval.methods.algcn import ALGCNModel, ALGCNObjective
from gcnretrieval.models.onednn import onednn_linear, use_onednn_linear
from gcnretrieval.options import TrainOptions
from gcnretrieval.training.trainer import build_optimizer
from paired_timing import paired_ratio

C, DV, DT, ALPHA, SUP = 24, 4096, 1386, 0.2, 0.5
gen = torch.Generator().manual_seed(0)
# training labels with planted implications (asymmetric co-occurrence), every label present
base = (torch.rand(2000, C, generator=gen) < 0.12)
base[:, 1] |= base[:, 0] & (torch.rand(2000, generator=gen) < 0.9)       # 0 implies 1, not the converse
base[:, 5] |= base[:, 4]
base[:C, :] |= torch.eye(C, dtype=torch.bool)
train_labels = base.numpy().astype(np.int64)
os.makedirs(f"{T}/data/mirflickr", exist_ok=True)
savemat(f"{T}/data/mirflickr/train_lab.mat", {"train_lab": train_labels})
subprocess.run([sys.executable, "gen_occurrence_adj.py"], cwd=T, check=True)
inp = torch.tensor(loadmat(f"{T}/inp.mat")["inp"], dtype=torch.float64)

def batch(n, dtype):
    g = torch.Generator().manual_seed(1)
    img = torch.randn(n, DV, generator=g, dtype=torch.float64).relu()
    txt = (torch.rand(n, DT, generator=g) < 0.01).double()
    lab = (torch.rand(n, C, generator=g) < 0.15).double(); lab[:, 0] = 1
    return img.to(dtype), txt.to(dtype), lab.to(dtype)

def build(dtype, parity=True):
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ALGCN(img_input_dim=DV, text_input_dim=DT, num_classes=C, t=0.4,
                    adj_file=f"{T}/data/mirflickr/adj.mat", inp=inp.float(), gamma=0.5).to(dtype)
    graph = build_label_graph(train_labels, inp.numpy(), threshold=0.4)
    ours = ALGCNModel(DV, DT, graph, encoder="gcn",
                      encoder_options={"num_layers": 3, "normalize": False, "bias": False},
                      common_dim=1024, gamma=0.5, self_loop_weight=1.5 if parity else None).to(dtype)
    objective = ALGCNObjective(alpha=ALPHA, beta=SUP, transpose_prior=parity)
    return ref, ours, objective

def mapping(ours):  # (our parameter, reference parameter, ours <- reference, grad ours -> reference scale)
    pairs = [("image_projector.lins.0.weight", "img_net.denseL1.weight", lambda w: w, lambda g: g),
             ("image_projector.lins.0.bias", "img_net.denseL1.bias", lambda w: w, lambda g: g),
             ("text_projector.lins.0.weight", "text_net.denseL1.weight", lambda w: w, lambda g: g),
             ("text_projector.lins.0.bias", "text_net.denseL1.bias", lambda w: w, lambda g: g),
             ("label_encoder.lin.weight", "hypo.weight", lambda w: w, lambda g: g),
             ("label_encoder.lin.bias", "hypo.bias", lambda w: w, lambda g: g),
             # ours is target-row (A_ij weighs j -> i), the reference source-row: B is transposed
             ("label_graph.residual", "B", lambda w: w.T / ours.label_graph.lr_scale,
              lambda g: g.T / ours.label_graph.lr_scale)]
    pairs += [(f"label_encoder.convs.{k}.lin.weight", f"gc{k + 1}.weight", lambda w: w.T, lambda g: g.T)
              for k in range(3)]
    return pairs

def copy_weights(ref, ours):
    r, o = dict(ref.named_parameters()), dict(ours.named_parameters())
    with torch.no_grad():
        for mine, theirs, to_ours, _ in mapping(ours):
            o[mine].copy_(to_ours(r[theirs]))
        o["label_graph.x"].copy_(r["inp"])
    covered = {m for m, *_ in mapping(ours)} | {"label_graph.x"}
    trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert trainable <= covered, trainable - covered
    return r, o

def ref_step(ref, img, txt, lab):
    v1, v2, p1, p2, _, sup = ref(img, txt)
    return calc_loss(v1, v2, p1, p2, lab, lab, ALPHA) + SUP * sup

def our_step(ours, objective, img, txt, lab):
    return objective(ours(img, txt), lab)[0]

# ---- 1. agreement (float64)
ref, ours, objective = build(torch.float64)
r, o = copy_weights(ref, ours)
prior_diff = (ref.A - ours.label_graph.prior_adjacency.T).abs().max().item()
img, txt, lab = batch(B, torch.float64)
torch.manual_seed(7); l_ref = ref_step(ref, img, txt, lab); l_ref.backward()
torch.manual_seed(7); l_ours = our_step(ours, objective, img, txt, lab); l_ours.backward()
loss_rel = abs(l_ours.item() - l_ref.item()) / abs(l_ref.item())
grad_rel = {m: (to_ref(o[m].grad) - r[t].grad).norm().item() / r[t].grad.norm().item()
            for m, t, _, to_ref in mapping(ours)}
worst = max(grad_rel, key=grad_rel.get)
print(f"float64, batch {B}: prior max |A_ours - A_ref| = {prior_diff:.1e}; loss ours {l_ours.item():.10f} "
      f"ref {l_ref.item():.10f}, rel err {loss_rel:.1e}; max grad rel err {grad_rel[worst]:.1e} ({worst}, "
      f"{len(grad_rel)} mapped tensors)")
print("  per tensor: " + ", ".join(f"{k} {v:.1e}" for k, v in grad_rel.items()))
# the remaining difference is the label scores' epsilon: substitute the code's formula and compare again
import gcnretrieval.methods.algcn as algcn_module
code_scores = lambda a, c: (a @ c.T) / (a.norm(dim=1)[:, None] * c.norm(dim=1)[None, :] + 1e-6)
ours.zero_grad()
saved, algcn_module.cosine_scores = algcn_module.cosine_scores, code_scores
torch.manual_seed(7); l_sub = our_step(ours, objective, img, txt, lab); l_sub.backward()
algcn_module.cosine_scores = saved
sub_rel = max((to_ref(o[m].grad) - r[t].grad).norm().item() / r[t].grad.norm().item()
              for m, t, _, to_ref in mapping(ours))
print(f"  with the code's score formula (norm product + 1e-6) in ours: loss rel err "
      f"{abs(l_sub.item() - l_ref.item()) / abs(l_ref.item()):.1e}, max grad rel err {sub_rel:.1e}")
_, plain, plain_obj = build(torch.float64, parity=False)
copy_weights(ref, plain)
torch.manual_seed(7); l_plain = our_step(plain, plain_obj, img, txt, lab)
print(f"  our defaults (self-loops 1, untransposed target): loss {l_plain.item():.10f}, "
      f"{(l_plain.item() - l_ref.item()) / abs(l_ref.item()):+.2e} relative to the reference")

# ---- 2. speed (float32, Adam lr 5e-5, betas (0.5, 0.999); B at 100x lr in the reference)
ref, ours, objective = build(torch.float32)
copy_weights(ref, ours)
img, txt, lab = batch(B, torch.float32)
opt_ref = torch.optim.Adam(ref.get_config_optim(5e-5), lr=5e-5, betas=(0.5, 0.999))
if os.environ.get("PLAIN_ADAM"):     # the reference's optimizer: model and loss alone are compared
    opt_ours = torch.optim.Adam([p for p in ours.parameters() if p.requires_grad], lr=5e-5, betas=(0.5, 0.999))
else:                                 # the optimizer as our trainer builds it
    opt_ours = build_optimizer(TrainOptions(lr=5e-5, betas=(0.5, 0.999)), list(ours.parameters()))
fast = use_onednn_linear("cpu")       # what our trainer does on this CPU

def step_of(loss, opt):
    def one():
        opt.zero_grad(); loss().backward(); opt.step()
    return one

def ours_loss():
    with onednn_linear(fast):
        return our_step(ours, objective, img, txt, lab)

speed = paired_ratio(step_of(lambda: ref_step(ref, img, txt, lab), opt_ref), step_of(ours_loss, opt_ours), STEPS, B)
print(f"float32, batch {B}, {STEPS} alternating pairs, {torch.get_num_threads()} threads, ours with "
      f"{type(opt_ours).__name__}{' fused' if opt_ours.defaults.get('fused') else ''} (oneDNN linear: {fast}): "
      f"reference {speed['reference_samples_per_s']:.0f} samples/s, ours {speed['ours_samples_per_s']:.0f} samples/s "
      f"(medians); per-pair ratio ours/ref median {speed['ratio_ours_over_ref_median']:.3f}, 95 % interval "
      f"[{speed['ratio_ci95'][0]:.3f}, {speed['ratio_ci95'][1]:.3f}]: {speed['verdict']}")
PYEOF
cd "$PROJ" && "$PY" "$T/side_by_side.py" "$T" "$B" "$STEPS" 2> >(grep -v -i "warn" >&2)
