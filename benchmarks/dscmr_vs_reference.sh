#!/usr/bin/env bash
# Side by side with the public DSCMR code (penghu-cs/DSCMR; Zhen et al., CVPR 2019): the loss and the
# gradient of every parameter on one fixed seeded batch, in float64, with identical weights copied
# parameter by parameter, then training steps (Adam, lr 1e-4, betas (0.5, 0.999); ours with the optimizer
# our trainer builds, fused Adam) at the paper's batch size in float32: STEPS pairs (default 40) of one
# step of each, who goes first alternating, and the median of the per-pair throughput ratios ours /
# reference with a 95 % interval and a verdict: "not slower" when the interval's lower bound is >= 0.97
# and the median >= 1.0, "slower" when its upper bound is < 1.0, else "undecided" (benchmarks/paired_timing.py).
# PLAIN_ADAM=1 in the environment gives ours the reference's optimizer (torch.optim.Adam's defaults), to
# compare model and loss alone.
# Shapes default to the demo data's (1,280-d image, 1,386-d text, 24 labels). Ours runs with the public code's readings (norm = "rows", similarity =
# "count", a classifier bias), which the method's docstring lists; the paper's default readings are
# also printed, as a loss value. The reference's files are exported to a temp dir at run time
# (.cuda() removed) and never committed.
#   benchmarks/dscmr_vs_reference.sh [MIRROR_GIT_DIR] [BATCH] [STEPS] [IMAGE_DIM] [TEXT_DIM] [LABELS]
# MIRROR_GIT_DIR: the git directory of a fetched github:penghu-cs/DSCMR (default: $DSCMR_GIT). Without one
# the script prints one line and exits 0. Run from the project root.
set -u
M=${1:-${DSCMR_GIT:-}}
B=${2:-100}; STEPS=${3:-40}; DV=${4:-1280}; DT=${5:-1386}; C=${6:-24}
PROJ=${PROJ:-$(pwd)}
PY=${PY:-$( [ -x "$PROJ/.venv/bin/python" ] && echo "$PROJ/.venv/bin/python" || echo python3 )}
if [ -z "$M" ] || ! git --git-dir="$M" rev-parse HEAD >/dev/null 2>&1; then
  echo "dscmr_vs_reference: skipped, no DSCMR git directory at '$M' (fetch github:penghu-cs/DSCMR and pass its git dir)"
  exit 0
fi
"$PY" -c "import gcnretrieval, scipy, torchvision" 2>/dev/null || { echo "$PY cannot import gcnretrieval, scipy and torchvision; set PY to the project's Python"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for f in model.py train_model.py evaluate.py; do git --git-dir="$M" show HEAD:$f | sed 's/\.cuda()//g' > "$T/$f"; done
cat > "$T/side_by_side.py" <<'PYEOF'
import io, contextlib, json, os, sys
import torch
sys.path[:0] = [sys.argv[1], os.path.join(os.getcwd(), "benchmarks")]  # the reference files, paired_timing
with contextlib.redirect_stdout(io.StringIO()):          # the reference prints versions on import
    from model import IDCM_NN
    from train_model import calc_loss
from gcnretrieval.methods.dscmr import DSCMRModel, DSCMRObjective
from gcnretrieval.options import TrainOptions
from gcnretrieval.training.trainer import build_optimizer
from paired_timing import paired_ratio

B, STEPS, DV, DT, C = (int(a) for a in sys.argv[2:7])
ALPHA, BETA = 1e-3, 1e-1                                  # the reference's main.py
NAMES = {"img_net.denseL1": "image_layer", "text_net.denseL1": "text_layer",
         "linearLayer": "shared_layer", "linearLayer2": "classifier"}


def batch(dtype):
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(B, DV, generator=gen).relu()
    text = (torch.rand(B, DT, generator=gen) < 0.02).float()
    labels = (torch.rand(B, C, generator=gen) < 0.15).float()
    labels[torch.arange(B), torch.randint(C, (B,), generator=gen)] = 1  # every row has a label
    return image.to(dtype), text.to(dtype), labels


def pair(dtype):
    torch.manual_seed(0)
    ref = IDCM_NN(img_input_dim=DV, text_input_dim=DT, output_dim=C).to(dtype)
    ours = DSCMRModel(image_dim=DV, text_dim=DT, num_labels=C, classifier_bias=True).to(dtype)
    theirs = dict(ref.named_parameters())
    mapped = {}
    with torch.no_grad():
        for ref_prefix, our_prefix in NAMES.items():
            for leaf in ("weight", "bias"):
                p_ours = ours.get_parameter(f"{our_prefix}.{leaf}")
                p_ours.copy_(theirs[f"{ref_prefix}.{leaf}"])
                mapped[f"{ref_prefix}.{leaf}"] = f"{our_prefix}.{leaf}"
    assert len(mapped) == len(theirs) == len(list(ours.parameters()))
    return ref, ours, mapped


def ref_loss(ref, image, text, labels):
    return calc_loss(*ref(image, text), labels, labels, ALPHA, BETA)


code_objective = DSCMRObjective(common_space_weight=ALPHA, invariance_weight=BETA, norm="rows", similarity="count")
paper_objective = DSCMRObjective(common_space_weight=ALPHA, invariance_weight=BETA)

# 1. loss and gradients, float64
image, text, labels = batch(torch.float64)
ref, ours, mapped = pair(torch.float64)
l_ref = ref_loss(ref, image, text, labels)
l_ours, _ = code_objective(ours(image, text), labels)
l_ref.backward()
l_ours.backward()
grad_err = max(((ours.get_parameter(o).grad - ref.get_parameter(r).grad).norm() / ref.get_parameter(r).grad.norm()).item()
               for r, o in mapped.items())
loss_err = abs(l_ours.item() - l_ref.item()) / abs(l_ref.item())
with torch.no_grad():
    l_paper, _ = paper_objective(ours(image, text), labels)


# 2. training steps, float32: pairs of one step of each, who goes first alternating
def stepper(model, loss_fn, opt):
    x = batch(torch.float32)

    def step():
        opt.zero_grad()
        loss = loss_fn(model, *x)
        loss.backward()
        opt.step()
    return step


ref32, ours32, _ = pair(torch.float32)
if os.environ.get("PLAIN_ADAM"):  # the reference's optimizer: model and loss alone are compared
    opt_ours = torch.optim.Adam(ours32.parameters(), lr=1e-4, betas=(0.5, 0.999))
else:                              # the optimizer as our trainer builds it
    opt_ours = build_optimizer(TrainOptions(lr=1e-4, betas=(0.5, 0.999)), list(ours32.parameters()))
speed = paired_ratio(stepper(ref32, ref_loss, torch.optim.Adam(ref32.parameters(), lr=1e-4, betas=(0.5, 0.999))),
                     stepper(ours32, lambda m, i, t, y: code_objective(m(i, t), y)[0], opt_ours), STEPS, B)
optimizer = type(opt_ours).__name__ + (" fused" if opt_ours.defaults.get("fused") else "")
print(json.dumps({"batch": B, "dims": [DV, DT, C], "loss_rel_err": loss_err, "grad_rel_err_max": grad_err,
                  "loss_ref": l_ref.item(), "loss_paper_reading": l_paper.item(), **speed,
                  "our_optimizer": optimizer, "threads": torch.get_num_threads()}))
lo, hi = speed["ratio_ci95"]
print(f"float64 batch {B} ({DV}/{DT}/{C}): loss rel. err {loss_err:.1e}, max grad rel. err {grad_err:.1e} "
      f"(loss {l_ref.item():.6f}; the paper's readings give {l_paper.item():.6f}) | float32 training steps, "
      f"{STEPS} pairs, ours with {optimizer}: reference {speed['reference_samples_per_s']:.0f} samples/s, ours "
      f"{speed['ours_samples_per_s']:.0f} samples/s; per-pair ratio ours/ref median "
      f"{speed['ratio_ours_over_ref_median']:.3f}, 95 % interval [{lo:.3f}, {hi:.3f}]: {speed['verdict']}")
PYEOF
(cd "$PROJ" && PYTHONPATH="$PROJ${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$T/side_by_side.py" "$T" "$B" "$STEPS" "$DV" "$DT" "$C")
