"""Circle-Soft weight, the full objective, its ablation conditions and the loss registry."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from gcnretrieval.errors import ConfigError, DataError
from gcnretrieval.losses import (
    AdjacencySupervisionLoss,
    AdversarialLoss,
    CanonicalCorrelationLoss,
    CircleLoss,
    CircleSoftLoss,
    ClassificationLoss,
    CommonSpaceDiscriminationLoss,
    CrossModalTripletLoss,
    FrobeniusRegularization,
    LabelPredictionLoss,
    LabelSpaceLoss,
    LossTerm,
    ModalityClassificationLoss,
    ModalityInvarianceLoss,
    Objective,
    SoftContrastiveLoss,
    adversarial_loss,
    circle_loss,
    classification_loss,
    soft_contrastive_loss,
)


@dataclass
class StandInOutput:
    """The fields of the model outputs that the losses read (CrossModalOutput's, then ACMROutput's, then
    ALGCNOutput's)."""

    image_embedding: torch.Tensor
    text_embedding: torch.Tensor
    image_label_scores: torch.Tensor
    text_label_scores: torch.Tensor
    image_real_logits: torch.Tensor
    image_fake_logits: torch.Tensor
    text_fake_logits: torch.Tensor
    text_real_logits: torch.Tensor
    image_label_logits: torch.Tensor
    text_label_logits: torch.Tensor
    image_modality_logits: torch.Tensor
    text_modality_logits: torch.Tensor
    projector_weights: tuple[torch.Tensor, ...]
    adjacency: torch.Tensor
    prior_adjacency: torch.Tensor


def make_output(n=8, d=6, c=4, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_(True)

    output = StandInOutput(
        image_embedding=leaf(n, d),
        text_embedding=leaf(n, d),
        image_label_scores=leaf(n, c),
        text_label_scores=leaf(n, c),
        image_real_logits=leaf(n, 2),
        image_fake_logits=leaf(n, 2),
        text_fake_logits=leaf(n, 2),
        text_real_logits=leaf(n, 2),
        image_label_logits=leaf(n, c),
        text_label_logits=leaf(n, c),
        image_modality_logits=leaf(n, 2),
        text_modality_logits=leaf(n, 2),
        projector_weights=(leaf(d, 5), leaf(d, 3)),
        adjacency=leaf(c, c),
        prior_adjacency=(torch.rand(c, c, generator=gen) < 0.4).to(dtype),
    )
    labels = (torch.rand(n, c, generator=gen) < 0.35).to(dtype)
    labels[0, 0] = labels[1, 0] = 1.0  # at least one positive pair
    return output, labels


def functional_terms(output, labels, **kw):
    l_cir = circle_loss(output.image_embedding, labels) + circle_loss(output.text_embedding, labels)
    l_soft = soft_contrastive_loss(output.image_embedding, output.text_embedding, labels)
    l_cla = classification_loss(output.image_label_scores, output.text_label_scores, labels)
    l_adv = adversarial_loss(
        output.image_real_logits, output.image_fake_logits, output.text_fake_logits, output.text_real_logits
    )
    return {name: value.detach() for name, value in dict(cir=l_cir, soft=l_soft, cla=l_cla, adv=l_adv).items()}


# --- Circle-Soft and its weight lambda -------------------------------------------------------


@pytest.mark.parametrize("theta_on", ["circle", "soft"])
def test_circle_soft_mixes_the_two_terms(theta_on):
    output, labels = make_output(seed=1)
    loss = CircleSoftLoss(theta=0.3, theta_on=theta_on)
    t = functional_terms(output, labels)
    if theta_on == "circle":
        expected = 0.3 * t["cir"] + 0.7 * t["soft"]
    else:
        expected = 0.7 * t["cir"] + 0.3 * t["soft"]
    assert torch.allclose(loss(output, labels).detach().double(), expected, rtol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("theta, theta_on, kept", [(0.0, "circle", "soft"), (1.0, "soft", "soft"),
                                                   (1.0, "circle", "cir"), (0.0, "soft", "cir")])
def test_a_term_fixed_at_weight_zero_is_logged_and_gives_no_gradient(fused, theta, theta_on, kept):
    output, labels = make_output(seed=4)
    t = functional_terms(output, labels)
    embeddings = (output.image_embedding, output.text_embedding)
    l_cir = circle_loss(output.image_embedding, labels) + circle_loss(output.text_embedding, labels)
    l_soft = soft_contrastive_loss(output.image_embedding, output.text_embedding, labels)
    expected = torch.autograd.grad(l_soft if kept == "soft" else l_cir, embeddings)
    loss = CircleSoftLoss(theta=theta, theta_on=theta_on, lambda_mode="fixed", fused=fused)
    parts = loss.components(output, labels)
    assert torch.allclose(parts["circle"].detach(), t["cir"], rtol=1e-10)
    assert torch.allclose(parts["soft"].detach(), t["soft"], rtol=1e-10)
    assert torch.allclose(parts["circle_soft"].detach(), t[kept], rtol=1e-10)
    assert not parts["soft" if kept == "cir" else "circle"].requires_grad
    for got, want in zip(torch.autograd.grad(parts["circle_soft"], embeddings), expected):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_lambda_receives_the_gradient_of_the_mix():
    output, labels = make_output(seed=2)
    loss = CircleSoftLoss(theta=0.6)
    loss(output, labels).backward()
    t = functional_terms(output, labels)
    # d/d(lambda) [lambda * L_cir + (1 - lambda) * L_soft] = L_cir - L_soft
    assert loss.lambda_raw.grad is not None
    assert loss.lambda_raw.grad.item() == pytest.approx((t["cir"] - t["soft"]).item(), rel=1e-6)


def test_lambda_is_a_parameter_of_the_objective_and_in_its_state_dict():
    objective = Objective()
    lam = objective.circle_soft.lambda_raw
    assert any(p is lam for p in objective.parameters())
    optimizer = torch.optim.Adam(list(objective.parameters()), lr=1e-3)
    assert any(p is lam for group in optimizer.param_groups for p in group["params"])
    state = objective.state_dict()
    assert state["circle_soft.lambda_raw"].item() == pytest.approx(0.6)
    restored = Objective()
    with torch.no_grad():
        state["circle_soft.lambda_raw"].fill_(0.25)
    restored.load_state_dict(state)
    assert restored.weight.item() == pytest.approx(0.25)


def test_fixed_lambda_is_a_buffer():
    objective = Objective(theta=0.4, lambda_mode="fixed")
    assert list(objective.parameters()) == []
    assert objective.state_dict()["circle_soft.lambda_raw"].item() == pytest.approx(0.4)
    output, labels = make_output(seed=3)
    total, parts = objective(output, labels)
    total.backward()
    assert parts["lambda"].item() == pytest.approx(0.4)
    assert not objective.circle_soft.lambda_raw.requires_grad


@pytest.mark.parametrize("direction", ["up", "down"])
def test_lambda_stays_in_unit_interval_and_keeps_its_gradient(direction):
    output, labels = make_output(seed=4)
    objective = Objective(theta=0.6)
    lam = objective.circle_soft.lambda_raw
    # plain SGD with a huge rate pushes lambda far outside [0, 1] in one step
    optimizer = torch.optim.SGD(objective.parameters(), lr=10.0, maximize=direction == "up")
    for _ in range(3):
        optimizer.zero_grad()
        total, parts = objective(output, labels)
        total.backward()
        assert lam.grad is not None and lam.grad.abs().item() > 0  # also at the boundary
        optimizer.step()
        assert not 0.0 <= lam.item() <= 1.0  # the raw value left the interval ...
        weight = objective.weight.item()
        assert 0.0 <= weight <= 1.0  # ... the weight in use did not
        assert 0.0 <= objective(output, labels)[1]["lambda"].item() <= 1.0
    boundary = 1.0 if (lam.item() > 1.0) else 0.0
    assert objective.weight.item() == boundary
    objective.project_()
    assert lam.item() == boundary


def test_lambda_stays_in_unit_interval_under_adam_with_projection():
    output, labels = make_output(seed=5)
    objective = Objective(theta=0.95)
    optimizer = torch.optim.Adam(objective.parameters(), lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        objective(output, labels)[0].backward()
        optimizer.step()
        objective.project_()
        assert 0.0 <= objective.circle_soft.lambda_raw.item() <= 1.0
    assert objective.weight.item() in (0.0, 1.0)  # the mix is linear in lambda: it ends on a boundary


# --- the objective and its conditions --------------------------------------------------------


EXPECTED = {
    "all": lambda t, lam: lam * t["cir"] + (1 - lam) * t["soft"] + 1.1 * t["cla"] + 2.2 * t["adv"],
    "cs_only": lambda t, lam: lam * t["cir"] + (1 - lam) * t["soft"],
    "no_cla": lambda t, lam: lam * t["cir"] + (1 - lam) * t["soft"] + 2.2 * t["adv"],
    "no_adv": lambda t, lam: lam * t["cir"] + (1 - lam) * t["soft"] + 1.1 * t["cla"],
    "no_cs": lambda t, lam: 1.1 * t["cla"] + 2.2 * t["adv"],
}
USED_FIELDS = {
    "all": {"image_embedding", "image_label_scores", "image_real_logits"},
    "cs_only": {"image_embedding"},
    "no_cla": {"image_embedding", "image_real_logits"},
    "no_adv": {"image_embedding", "image_label_scores"},
    "no_cs": {"image_label_scores", "image_real_logits"},
}


@pytest.mark.parametrize("condition", sorted(EXPECTED))
def test_conditions_keep_the_right_terms(condition):
    output, labels = make_output(seed=6)
    objective = Objective(condition=condition)
    total, parts = objective(output, labels)
    t = functional_terms(output, labels)
    expected = EXPECTED[condition](t, 0.6)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    for field in ("image_embedding", "image_label_scores", "image_real_logits"):
        grad = getattr(output, field).grad
        receives = grad is not None and grad.abs().sum().item() > 0
        assert receives == (field in USED_FIELDS[condition]), field
    # every term is logged, detached, whatever the condition
    assert set(parts) == {"circle", "soft", "circle_soft", "classification", "adversarial", "lambda", "lambda_grad", "total"}
    assert all(not value.requires_grad for value in parts.values())
    assert parts["circle"].item() == pytest.approx(t["cir"].item(), rel=1e-6)
    assert parts["soft"].item() == pytest.approx(t["soft"].item(), rel=1e-6)
    assert parts["classification"].item() == pytest.approx(t["cla"].item(), rel=1e-6)
    assert parts["adversarial"].item() == pytest.approx(t["adv"].item(), rel=1e-6)
    assert parts["total"].item() == pytest.approx(total.item())


def test_weights_alpha_beta_are_applied():
    output, labels = make_output(seed=7)
    total, _ = Objective(alpha=0.5, beta=3.0, theta=1.0, lambda_mode="fixed")(output, labels)
    t = functional_terms(output, labels)
    assert total.item() == pytest.approx((t["cir"] + 0.5 * t["cla"] + 3.0 * t["adv"]).item(), rel=1e-6)


def test_dropped_term_with_missing_inputs_is_logged_as_nan():
    output, labels = make_output(seed=8)
    output.image_real_logits = None
    total, parts = Objective(condition="no_adv")(output, labels)
    assert torch.isfinite(total)
    assert torch.isnan(parts["adversarial"])
    with pytest.raises(DataError, match="image_real_logits"):
        Objective(condition="all")(output, labels)


@pytest.mark.parametrize("norm", [1e4, 1e-6])
def test_objective_is_finite_at_gamma_256_and_extreme_norms(norm):
    output, labels = make_output(n=12, seed=9, dtype=torch.float32)
    for field in ("image_embedding", "text_embedding"):
        value = getattr(output, field).detach()
        setattr(output, field, (value / value.norm(dim=1, keepdim=True) * norm).requires_grad_(True))
    objective = Objective(gamma=256.0)
    total, parts = objective(output, labels)
    total.backward()
    assert all(torch.isfinite(value) for value in parts.values())
    assert torch.isfinite(output.image_embedding.grad).all()
    assert torch.isfinite(output.text_embedding.grad).all()
    assert torch.isfinite(objective.circle_soft.lambda_raw.grad)


def test_bad_options_raise_one_clear_error():
    with pytest.raises(ConfigError, match="did you mean 'no_cla'"):
        Objective(condition="no_cl")
    with pytest.raises(ConfigError, match="theta"):
        Objective(theta=1.5)
    with pytest.raises(ConfigError, match="theta"):
        CircleSoftLoss(theta=-0.1)
    with pytest.raises(ConfigError, match="did you mean 'learned'"):
        Objective(lambda_mode="learn")
    with pytest.raises(ConfigError, match="did you mean 'soft'"):
        Objective(theta_on="sof")
    with pytest.raises(ConfigError, match="did you mean 'global'"):
        Objective(reduction="globl")
    with pytest.raises(ConfigError, match="gamma"):
        Objective(gamma=-1.0)
    with pytest.raises(ConfigError, match="temperature"):
        Objective(temperature=0.0)
    with pytest.raises(ConfigError, match="alpha"):
        Objective(alpha=-1.0)


# --- contract: every loss term --------------------------------------------------------------

TERMS = [
    AdjacencySupervisionLoss,
    AdversarialLoss,
    CanonicalCorrelationLoss,
    CircleLoss,
    CircleSoftLoss,
    ClassificationLoss,
    CommonSpaceDiscriminationLoss,
    CrossModalTripletLoss,
    FrobeniusRegularization,
    LabelPredictionLoss,
    LabelSpaceLoss,
    ModalityClassificationLoss,
    ModalityInvarianceLoss,
    SoftContrastiveLoss,
]


def test_the_terms_are_every_loss_term_of_the_package():
    import gcnretrieval.losses as losses

    found = {obj for obj in vars(losses).values() if isinstance(obj, type) and issubclass(obj, LossTerm) and obj is not LossTerm}
    assert found == set(TERMS)


@pytest.mark.parametrize("cls", TERMS, ids=lambda cls: cls.__name__)
def test_every_term_has_the_uniform_signature(cls):
    term = cls()
    assert isinstance(term, LossTerm)
    output, labels = make_output(seed=10)
    value = term(output, labels)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    leaves = [getattr(output, f) for f in StandInOutput.__dataclass_fields__]
    leaves = [x for leaf in leaves for x in (leaf if isinstance(leaf, tuple) else (leaf,))]
    assert any(x.grad is not None for x in leaves)
    term.reset_parameters()


# --- the Circle-Soft balance: learned lambda, its gradient, uncertainty weighting --------------


@pytest.mark.parametrize("theta_on", ["circle", "soft"])
def test_the_logged_lambda_gradient_is_the_derivative_of_the_mix(theta_on):
    output, labels = make_output(seed=4, dtype=torch.float32)
    loss = CircleSoftLoss(theta=0.6, theta_on=theta_on)
    parts = loss.components(output, labels)
    parts["circle_soft"].backward()
    expected = parts["circle"] - parts["soft"] if theta_on == "circle" else parts["soft"] - parts["circle"]
    torch.testing.assert_close(parts["lambda_grad"], expected.detach())
    torch.testing.assert_close(loss.lambda_raw.grad, expected.detach())  # what the optimizer sees


def test_uncertainty_weighting_follows_kendall():
    output, labels = make_output(seed=5, dtype=torch.float32)
    loss = CircleSoftLoss(theta=0.7, lambda_mode="uncertainty")
    parts = loss.components(output, labels)
    s_c, s_s = loss.log_variances.detach().tolist()
    assert (0.5 * math.exp(-s_c), 0.5 * math.exp(-s_s)) == pytest.approx((0.7, 0.3))  # starts at theta, 1 - theta
    expected = 0.5 * math.exp(-s_c) * parts["circle"] + 0.5 * math.exp(-s_s) * parts["soft"] + 0.5 * (s_c + s_s)
    torch.testing.assert_close(parts["circle_soft"], expected)
    parts["circle_soft"].backward()
    grad = loss.log_variances.grad
    # d/ds of e^-s L / 2 + s / 2 = (1 - e^-s L) / 2: zero where the weight balances its term
    torch.testing.assert_close(grad, 0.5 - 0.5 * torch.exp(-loss.log_variances.detach()) *
                               torch.stack([parts["circle"], parts["soft"]]).detach())
    assert float(parts["lambda"]) == pytest.approx(0.7)
    assert not any(p is loss.lambda_raw for p in loss.parameters())


@pytest.mark.parametrize("lambda_mode, theta_on", [("learned", "circle"), ("fixed", "soft"), ("uncertainty", "circle"),
                                                   ("uncertainty", "soft")])
def test_the_logged_term_weights_are_the_factors_of_the_mix(lambda_mode, theta_on):
    output, labels = make_output(seed=6, dtype=torch.float32)
    loss = CircleSoftLoss(theta=0.7, theta_on=theta_on, lambda_mode=lambda_mode)
    with torch.no_grad():
        (loss.log_variances if lambda_mode == "uncertainty" else loss.lambda_raw).add_(0.1)  # off the initial point
    parts = loss.components(output, labels)
    w_circle, w_soft = loss.term_weights()
    regulariser = 0.5 * float(loss.log_variances.detach().sum()) if lambda_mode == "uncertainty" else 0.0
    value = {name: float(parts[name].detach()) for name in ("circle", "soft", "circle_soft")}
    expected = w_circle * value["circle"] + w_soft * value["soft"] + regulariser
    assert value["circle_soft"] == pytest.approx(expected, rel=1e-6)
    if lambda_mode != "uncertainty":
        assert w_circle + w_soft == pytest.approx(1.0)
        assert (w_circle if theta_on == "circle" else w_soft) == pytest.approx(0.8)


def test_the_term_weights_are_logged_per_epoch():
    from gcnretrieval.config import load_config
    from gcnretrieval.training import Trainer, build_experiment

    recipe = {"run": {"seed": 0}, "data": {"source": "synthetic", "synthetic": {
        "num_train": 60, "num_test": 10, "num_labels": 4, "image_dim": 8, "text_dim": 6}},
        "graph": {"node_features": "random", "node_feature_dim": 4, "threshold": 0.3}, "encoder": {"num_layers": 1},
        "model": {"common_dim": 4}, "loss": {"lambda_mode": "uncertainty", "theta": 0.6},
        "train": {"batch_size": 20, "epochs": 2, "lr": 0.05, "device": "cpu"}, "eval": {"select_on": "test"}}
    trainer = Trainer(build_experiment(load_config(recipe)))
    history = trainer.fit()
    weights = 0.5 * torch.exp(-trainer.objective.circle_soft.log_variances.detach())
    assert (history[-1]["weight_circle"], history[-1]["weight_soft"]) == pytest.approx(weights.tolist())
    assert history[-1]["weight_circle"] != pytest.approx(0.6)  # it moved with the training
    assert history[-1]["lambda"] == pytest.approx(weights[0] / weights.sum())


def test_a_learned_lambda_at_its_bound_is_reported(caplog):
    import logging

    from gcnretrieval.config import load_config
    from gcnretrieval.training import Trainer, build_experiment

    recipe = {"run": {"seed": 0}, "data": {"source": "synthetic", "synthetic": {
        "num_train": 60, "num_test": 10, "num_labels": 4, "image_dim": 8, "text_dim": 6}},
        "graph": {"node_features": "random", "node_feature_dim": 4, "threshold": 0.3}, "encoder": {"num_layers": 1},
        "model": {"common_dim": 4}, "train": {"batch_size": 20, "epochs": 2, "lr": 0.5, "device": "cpu"},
        "eval": {"select_on": "test"}}
    trainer = Trainer(build_experiment(load_config(recipe)))
    with caplog.at_level(logging.WARNING, logger="gcnretrieval"):
        history = trainer.fit()
    assert history[-1]["lambda"] in (0.0, 1.0)
    messages = [r.getMessage() for r in caplog.records if "reached its bound" in r.getMessage()]
    assert len(messages) == 1 and 'loss.lambda_mode = "uncertainty"' in messages[0]
