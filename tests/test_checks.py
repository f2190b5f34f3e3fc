"""The argument checks of gcnretrieval.checks and the field checks of the option tables."""
import math
import re

import pytest

from gcnretrieval.checks import check_count, check_interval, check_option, check_positive
from gcnretrieval.errors import ConfigError, InvalidArgument
from gcnretrieval.options import EvalOptions, GraphOptions, RunOptions, TrainOptions, TuneOptions


@pytest.mark.parametrize(("bounds", "inside", "outside"), [
    ("[0, 1]", [0, 0.5, 1], [-1e-9, 1.0000001]),
    ("(0, 1]", [1e-12, 1], [0, 1.5]),
    ("[0, 1)", [0, 0.999], [1, -0.1]),
    ("(0, 1)", [0.5], [0, 1]),
    ("(-2, 3.5]", [-1.5, 3.5], [-2, 3.6]),
])
def test_check_interval_takes_its_bounds_as_written(bounds, inside, outside):
    for value in inside:
        assert check_interval("x", value, bounds) == float(value)
    for value in outside:
        with pytest.raises(InvalidArgument, match=rf"x must be in {re.escape(bounds)}, got {value!r}"):
            check_interval("x", value, bounds)


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "0.5", None])
def test_check_interval_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(InvalidArgument, match="x must be a finite number"):
        check_interval("x", value, "[0, 1]")


def test_check_interval_is_the_closed_unit_interval_by_default():
    assert check_interval("t", 1) == 1.0 and check_interval("t", 0) == 0.0
    with pytest.raises(InvalidArgument, match=r"t must be in \[0, 1\], got 1.5"):
        check_interval("t", 1.5)


@pytest.mark.parametrize(("value", "message"), [
    (0, "--trials must be at least 1, got 0"),
    (2.5, "--trials must be an integer, got 2.5"),
    (True, "--trials must be an integer, got True"),
])
def test_check_count_names_the_command_line_option(value, message):
    with pytest.raises(ConfigError) as err:
        check_count("trials", value)
    assert str(err.value) == message and not isinstance(err.value, InvalidArgument)
    assert check_count("trials", 3) == 3


def test_check_option_wraps_any_check():
    with pytest.raises(ConfigError, match="^--timeout must be a number > 0, got 0$"):
        check_option(check_positive, "timeout", 0)
    assert check_option(check_positive, "timeout", 2) == 2.0


@pytest.mark.parametrize(("make", "argument", "rule"), [
    (lambda: TrainOptions(epochs=0), "epochs", "must be at least 1, got 0"),
    (lambda: TrainOptions(steps=0), "steps", "must be at least 1, got 0"),
    (lambda: TrainOptions(warmup=1.0), "warmup", "must be in [0, 1), got 1.0"),
    (lambda: TrainOptions(lr=0.0), "lr", "must be a number > 0, got 0.0"),
    (lambda: TrainOptions(min_delta=-1.0), "min_delta", "must be a finite number >= 0, got -1.0"),
    (lambda: TrainOptions(batch_size=1), "batch_size", "must be at least 2, got 1"),
    (lambda: TrainOptions(optimizer="adma"), "optimizer", "must be one of adam, adamw, sgd, got 'adma' — did you mean 'adam'?"),
    (lambda: TrainOptions(precision="32-true"), "precision", "must be one of 32, bf16-mixed, 16-mixed, got '32-true'"),
    (lambda: GraphOptions(threshold=0.0), "threshold", "must be in (0, 1], got 0.0"),
    (lambda: GraphOptions(threshold=math.nan), "threshold", "must be a finite number, got nan"),
    (lambda: GraphOptions(kind="cooc"), "kind", "must be one of cooccurrence, embedding, adaptive, got 'cooc'"),
    (lambda: GraphOptions(node_feature_dim=0), "node_feature_dim", "must be at least 1, got 0"),
    (lambda: EvalOptions(val_fraction=1.0), "val_fraction", "must be in (0, 1), got 1.0"),
    (lambda: EvalOptions(select_on="train"), "select_on", "must be one of val, test, got 'train'"),
    (lambda: TuneOptions(startup_trials=-1), "startup_trials", "must be at least 0, got -1"),
    (lambda: RunOptions(seed=-1), "seed", "must be a non-negative integer below 2**63, got -1"),
])
def test_option_tables_check_their_fields_when_constructed_directly(make, argument, rule):
    with pytest.raises(InvalidArgument) as err:
        make()
    assert err.value.argument == argument
    assert err.value.rule.startswith(rule)


def test_option_tables_accept_their_defaults_and_unset_optional_keys():
    assert TrainOptions(steps=None, patience=None).steps is None
    assert TuneOptions(startup_trials=0, warmup_epochs=0).startup_trials == 0
    assert GraphOptions(threshold=1).threshold == 1
