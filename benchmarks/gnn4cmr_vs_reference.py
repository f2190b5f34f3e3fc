"""DAGNN and I-GNN-CON against the public reference code (LivXue/GNN4CMR), side by side.

Run by ``benchmarks/gnn4cmr_vs_reference.sh``, which exports the reference's files to a temporary
directory (never committed) and passes it as ``--reference``. For one method at a time it builds
the reference model (``P_GNN`` of the AAAI-2021 release for DAGNN, ``I_GNN`` of the TPAMI-2022
code for I-GNN-CON) and ours (``CrossModalModel`` with the method's options), copies every
parameter and BatchNorm buffer of the reference into ours (names mapped explicitly below),
evaluates both losses on one fixed seeded batch in float64, and prints

- the relative error of the loss, :math:`|L_{ours} - L_{ref}| / |L_{ref}|`;
- the largest relative error of a mapped parameter's gradient,
  :math:`\\max_p \\lVert g_{ours} - g_{ref} \\rVert / \\lVert g_{ref} \\rVert`;
- the same two figures with our label scores computed by the reference's formula
  (:math:`\mathbf{v}\mathbf{c}^\top / (\lVert\mathbf{v}\rVert\lVert\mathbf{c}\rVert + 10^{-6})`,
  the one difference left), which then agree to rounding;
- training samples per second of both in float32 at the paper's batch size (Adam, lr 5e-5,
  betas (0.5, 0.999); the reference with ``torch.optim.Adam``'s defaults as its code builds it, ours
  as our trainer builds it, ``build_optimizer``: the fused kernel; ``--plain-adam`` gives ours the
  reference's) from the median time of steps taken alternately (one of each per pair, who
  goes first alternating), and the throughput ratio of each pair, :math:`r_i = t^{ref}_i /
  t^{ours}_i`: its median with a distribution-free 95 % interval (order statistics of the median,
  ``benchmarks/paired_timing.py``) and a verdict, ``"not slower"`` when the interval's lower bound
  is at least 0.97 and the median at least 1.0, ``"slower"`` when the upper bound is below 1.0,
  ``"undecided"`` otherwise.

Inputs have MIRFlickr's shapes: 4,096-d image features, 1,386-d text features, 24 labels, the
reference's own GloVe label vectors; the co-occurrence graph of DAGNN comes from a seeded
synthetic training-label matrix with correlated labels (written as the reference's ``adj.mat``).

    python benchmarks/gnn4cmr_vs_reference.py --reference DIR --method dagnn [--batch 100] [--steps 40]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # paired_timing.py, beside this script
from paired_timing import paired_ratio  # noqa: E402

IMAGE_DIM, TEXT_DIM, NUM_LABELS, COMMON_DIM, THRESHOLD = 4096, 1386, 24, 1024, 0.4
#: each method: (reference code directory under --reference, its GNN depth, the graph's k, loss weights)
METHODS = {"dagnn": {"dir": "aaai2021", "layers": 5}, "ignn_con": {"dir": "tpami2022", "layers": 5, "k": 8}}


def synthetic_labels(n: int, seed: int) -> np.ndarray:
    """Correlated multi-hot labels: 6 topics of 4 labels, label frequencies differing within a topic."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, NUM_LABELS), dtype=np.float64)
    keep = np.array([0.9, 0.6, 0.4, 0.25])
    for i in range(n):
        topics = np.flatnonzero(rng.random(6) < 0.3)
        if topics.size == 0:
            topics = [rng.integers(6)]
        for topic in topics:
            labels[i, 4 * topic:4 * topic + 4] = rng.random(4) < keep
        labels[i] = np.maximum(labels[i], rng.random(NUM_LABELS) < 0.02)
        if not labels[i].any():
            labels[i, 4 * topics[0]] = 1.0
    return labels


def write_adjacency(labels: np.ndarray, path: str) -> None:
    """The reference's ``adj.mat``: co-occurrence counts off the diagonal (ML-GCN's file) and label counts."""
    from scipy.io import savemat

    counts = labels.T @ labels
    nums = np.diag(counts).copy()
    np.fill_diagonal(counts, 0.0)
    savemat(path, {"adj": counts, "nums": nums})


def section(preset: dict[str, Any], table: str) -> dict[str, Any]:
    """The keys of one recipe table in a method preset (``"name"`` left out)."""
    prefix = table + "."
    return {key[len(prefix):]: value for key, value in preset.items()
            if key.startswith(prefix) and key != prefix + "name"}


def build_pair(method: str, reference: str, inp: torch.Tensor, train_labels: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """(reference model, reference loss function, our model, our objective), weights not yet shared."""
    from gcnretrieval.graphs import AdaptiveLabelGraph, build_label_graph
    from gcnretrieval.models import CrossModalModel

    folder = f"{reference}/{METHODS[method]['dir']}"
    sys.path.insert(0, folder)
    for name in ("model", "util", "loss", "train_model", "evaluate"):
        sys.modules.pop(name, None)
    ref_model = importlib.import_module("model")
    util = importlib.import_module("util")
    layers = METHODS[method]["layers"]
    preset = importlib.import_module(f"gcnretrieval.methods.{method}").PRESET  # ours: built from the preset
    encoder_options = section(preset, "encoder")
    model_options = section(preset, "model")
    assert encoder_options["num_layers"] == layers and preset["encoder.name"] == "gcn"
    if method == "dagnn":
        from gcnretrieval.methods.dagnn import DAGNNObjective

        adj_file = f"{folder}/adj.mat"
        write_adjacency(train_labels, adj_file)
        ref = ref_model.P_GNN(IMAGE_DIM, TEXT_DIM, COMMON_DIM, NUM_LABELS, inp.size(1), THRESHOLD, adj_file, inp.clone(),
                              "GCN", layers)
        # the reference builds its adjacency from a FloatTensor: rebuild it with its own functions in the run's dtype
        adjacency = torch.as_tensor(util.gen_A(NUM_LABELS, THRESHOLD, adj_file), dtype=torch.get_default_dtype())
        ref.adj.data = util.gen_adj(adjacency)
        train = importlib.import_module("train_model")

        def ref_loss(out: tuple, labels: torch.Tensor, alpha: float = 0.2, beta: float = 0.2) -> torch.Tensor:
            v, t, p_v, p_t, _, a, b, c, d = out
            return (train.calc_loss(v, t, p_v, p_t, labels, labels, alpha)
                    + beta * train.calc_gan_loss(a, b, c, d, labels.size(0)))

        graph = build_label_graph(train_labels, inp, kind=preset["graph.kind"], threshold=preset["graph.threshold"],
                                  **section(preset, "graph.options"))
        objective = DAGNNObjective(**section(preset, "loss"))
    else:
        from gcnretrieval.losses import Objective

        k = METHODS[method]["k"]
        ref = ref_model.I_GNN(IMAGE_DIM, TEXT_DIM, COMMON_DIM, NUM_LABELS, inp.size(1), THRESHOLD, k, inp.clone(),
                              "GCN", layers)
        losses = importlib.import_module("loss")

        def ref_loss(out: tuple, labels: torch.Tensor, alpha: float = 0.5, beta: float = 2.0) -> torch.Tensor:
            v, t, p_v, p_t, _, a, b, c, d = out
            return (alpha * losses.cla_loss(p_v, p_t, labels, labels) + losses.soft_con_loss(v, t, labels, 0.22, 0.14)
                    + beta * losses.gan_loss(a, b, c, d))

        assert preset["graph.kind"] == "adaptive" and preset["graph.options.num_weights"] == k
        graph = AdaptiveLabelGraph(inp, threshold=preset["graph.threshold"], **section(preset, "graph.options"))
        objective = Objective(**section(preset, "loss"))
    ours = CrossModalModel(IMAGE_DIM, TEXT_DIM, graph, encoder="gcn", encoder_options=encoder_options, **model_options)
    sys.path.remove(folder)
    return ref, ref_loss, ours, objective


def parameter_map(method: str, ref: torch.nn.Module, ours: torch.nn.Module) -> list[tuple[str, str, bool]]:
    """``(reference name, our name, transpose)`` for every parameter and BatchNorm buffer of the reference."""
    pairs: list[tuple[str, str, bool]] = []

    def linear(src: str, dst: str) -> None:
        pairs.extend([(f"{src}.weight", f"{dst}.weight", False), (f"{src}.bias", f"{dst}.bias", False)])

    def norm(src: str, dst: str) -> None:
        if hasattr(ref.get_submodule(src), "bn"):
            for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                pairs.append((f"{src}.bn.{leaf}", f"{dst}.norm.{leaf}", False))

    for src, dst in (("img_net", "image_projector"), ("text_net", "text_projector")):
        norm(src, dst)
        linear(f"{src}.denseL1", f"{dst}.lins.0")
    for src, dst in (("img2text_net", "image_to_text"), ("text2img_net", "text_to_image")):
        norm(src, dst)
        linear(f"{src}.denseL1", f"{dst}.lin1")
        linear(f"{src}.denseL2", f"{dst}.lin2")
    for src, dst in (("img_md_net", "image_discriminator"), ("text_md_net", "text_discriminator")):
        norm(src, dst)
        for layer in range(3):
            linear(f"{src}.denseL{layer + 1}", f"{dst}.lins.{layer}")
    for layer in range(ref.n_layers):
        pairs.append((f"lrn_{layer}.weight", f"label_encoder.convs.{layer}.conv.lin.weight", True))
    linear("hypo", "label_encoder.lin")
    if method == "ignn_con":
        pairs.append(("inp", "label_graph.x", False))
        pairs.extend((f"W_{k}", f"label_graph.weight.{k}", False) for k in range(ref.k))
    return pairs


def _tensor(module: torch.nn.Module, name: str) -> torch.Tensor:
    head, _, leaf = name.rpartition(".")
    if leaf.isdigit():  # a row of a parameter matrix (the adaptive graph's w_k)
        return _tensor(module, head)[int(leaf)]
    state = dict(module.named_parameters()) | dict(module.named_buffers())
    return state[name]


def _gradient(module: torch.nn.Module, name: str) -> torch.Tensor | None:
    head, _, leaf = name.rpartition(".")
    if leaf.isdigit():
        grad = _gradient(module, head)
        return None if grad is None else grad[int(leaf)]
    return dict(module.named_parameters())[name].grad


def share_weights(pairs: list[tuple[str, str, bool]], ref: torch.nn.Module, ours: torch.nn.Module) -> None:
    """Copy the reference's parameters and buffers into ours; every tensor of ours must be covered."""
    covered = set()
    with torch.no_grad():
        for src, dst, transpose in pairs:
            value = _tensor(ref, src)
            _tensor(ours, dst).copy_(value.t() if transpose else value)
            covered.add(dst.rpartition(".")[0] if dst.rpartition(".")[2].isdigit() else dst)
    missing = [name for name, _ in ours.named_parameters() if name not in covered]
    if missing:
        raise SystemExit(f"parameters of ours without a reference counterpart: {missing}")


def batch(n: int, labels: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(n, IMAGE_DIM, generator=gen).relu()
    text = (torch.rand(n, TEXT_DIM, generator=gen) < 0.01).float()
    text[:, 0] = 1.0  # no empty bag of words
    return (image.to(torch.get_default_dtype()), text.to(torch.get_default_dtype()),
            torch.as_tensor(labels[:n], dtype=torch.get_default_dtype()))


def reference_cosine_scores(embedding: torch.Tensor, label_embedding: torch.Tensor) -> torch.Tensor:
    """The reference's label scores, v c / (|v| |c| + 1e-6), for the ``exact_cosine`` check."""
    norms = embedding.norm(dim=1)[:, None] * label_embedding.norm(dim=1)[None, :]
    return embedding @ label_embedding.t() / (norms + 1e-6)


def agreement(method: str, reference: str, n: int, exact_cosine: bool = False) -> dict[str, Any]:
    """Loss and gradients of both on one fixed batch, float64, shared weights; with ``exact_cosine`` our
    label scores use the reference's formula (the one difference left), to show that nothing else differs."""
    import gcnretrieval.models.cross_modal as cross_modal

    ours_scores = cross_modal.cosine_scores
    if exact_cosine:
        cross_modal.cosine_scores = reference_cosine_scores
    from scipy.io import loadmat

    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        train_labels = synthetic_labels(2000, seed=1)
        # the label vectors as our graph stores them (float32), in float64
        inp = torch.as_tensor(loadmat(f"{reference}/inp.mat")["inp"], dtype=torch.float32).double()
        ref, ref_loss, ours, objective = build_pair(method, reference, inp, train_labels)
        pairs = parameter_map(method, ref, ours)
        share_weights(pairs, ref, ours)
        ref.train()
        ours.train()
        image, text, labels = batch(n, train_labels, seed=2)
        loss_ref = ref_loss(ref(image, text), labels)
        loss_ref.backward()
        loss_ours, _ = objective(ours(image, text), labels)
        loss_ours.backward()
        errors = {}
        buffers = dict(ref.named_buffers())
        for src, dst, transpose in pairs:
            if src in buffers:
                continue
            g_ref, g_ours = _gradient(ref, src), _gradient(ours, dst)
            g_ref = g_ref.t() if transpose else g_ref
            errors[dst] = float((g_ours - g_ref).norm() / g_ref.norm())
        worst = max(errors, key=errors.get)
        return {"method": method, "check": "exact_cosine" if exact_cosine else "agreement", "batch": n,
                "dtype": "float64", "loss_ref": loss_ref.item(),
                "loss_ours": loss_ours.item(), "loss_rel_error": abs((loss_ours - loss_ref).item()) / abs(loss_ref.item()),
                "grad_rel_error_max": errors[worst], "grad_rel_error_worst_param": worst,
                "grad_rel_error_median": statistics.median(errors.values()), "params_compared": len(errors)}
    finally:
        torch.set_default_dtype(torch.float32)
        cross_modal.cosine_scores = ours_scores


def throughput(method: str, reference: str, n: int, steps: int, plain_adam: bool = False) -> dict[str, Any]:
    """Training steps of both in float32 at batch ``n``, ``steps`` pairs alternated step by step: samples
    per second (from the median step times), the per-pair ratio's median, 95 % interval and verdict
    (:func:`paired_timing.paired_ratio`)."""
    from scipy.io import loadmat

    from gcnretrieval.models.onednn import onednn_linear, use_onednn_linear
    from gcnretrieval.options import TrainOptions
    from gcnretrieval.training.trainer import build_optimizer

    torch.manual_seed(0)
    train_labels = synthetic_labels(2000, seed=1)
    inp = torch.as_tensor(loadmat(f"{reference}/inp.mat")["inp"], dtype=torch.float32)
    ref, ref_loss, ours, objective = build_pair(method, reference, inp, train_labels)
    share_weights(parameter_map(method, ref, ours), ref, ours)
    image, text, labels = batch(n, train_labels, seed=2)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=5e-5, betas=(0.5, 0.999))
    our_params = list(ours.parameters()) + list(objective.parameters())
    if plain_adam:  # the reference's optimizer: the model and loss alone are compared
        our_opt = torch.optim.Adam(our_params, lr=5e-5, betas=(0.5, 0.999))
    else:  # the optimizer as our trainer builds it (fused Adam where the device has the kernel)
        our_opt = build_optimizer(TrainOptions(lr=5e-5, betas=(0.5, 0.999)), our_params)
    onednn = use_onednn_linear("cpu")  # as the trainer decides it for a float32 CPU run

    def ref_step() -> None:
        ref_opt.zero_grad()
        ref_loss(ref(image, text), labels).backward()
        ref_opt.step()

    def our_step() -> None:
        our_opt.zero_grad()
        with onednn_linear(onednn):
            loss, _ = objective(ours(image, text), labels)
        loss.backward()
        our_opt.step()
        objective.project_()

    return {"method": method, "batch": n, "dtype": "float32", **paired_ratio(ref_step, our_step, steps, n),
            "our_optimizer": type(our_opt).__name__ + (" fused" if our_opt.defaults.get("fused") else ""),
            "onednn": onednn, "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="directory with the exported reference files")
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    parser.add_argument("--batch", type=int, default=100, help="paper batch size (MIRFlickr: 100)")
    parser.add_argument("--agreement-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40, help="timed pairs of steps (one of each)")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--plain-adam", action="store_true",
                        help="ours with the reference's optimizer (torch.optim.Adam's defaults) instead of the trainer's")
    args = parser.parse_args(argv)
    print(json.dumps(agreement(args.method, args.reference, args.agreement_batch)), flush=True)
    print(json.dumps(agreement(args.method, args.reference, args.agreement_batch, exact_cosine=True)), flush=True)
    if not args.no_speed:
        print(json.dumps(throughput(args.method, args.reference, args.batch, args.steps, args.plain_adam)), flush=True)


if __name__ == "__main__":
    main()
