"""Building encoders by name: errors for unknown names and options, listings, summaries."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from gcnretrieval.cli import cli
from gcnretrieval.encoders import (
    ENCODERS,
    L2GCN,
    LabelEncoder,
    available_encoders,
    build_encoder,
    describe_encoders,
    mean_pairwise_cosine,
    register_encoder,
)
from gcnretrieval.errors import ConfigError, GcnRetrievalError, UnknownNameError


def test_registry_is_backed_by_the_entry_point_group():
    assert ENCODERS.kind == "encoder"
    assert ENCODERS.entry_point_group == "gcnretrieval.encoders"
    assert available_encoders() == sorted(available_encoders())


def test_unknown_encoder_name_suggests_the_closest():
    with pytest.raises(UnknownNameError) as info:
        build_encoder("gcm", 300, 1024)
    choices = ", ".join(available_encoders())
    assert str(info.value) == f"unknown encoder 'gcm' — did you mean 'gcn'? choices: {choices}"
    assert isinstance(info.value, GcnRetrievalError)


def test_unknown_option_names_it_and_lists_the_accepted_ones():
    with pytest.raises(ConfigError) as info:
        build_encoder("l2gcn", 300, 1024, num_layer=5)
    message = str(info.value)
    assert message.startswith("unknown option 'num_layer' for encoder 'l2gcn'; accepted options: ")
    assert message.endswith(", ".join(L2GCN.options()))
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"unknown options 'a', 'heads' for encoder 'gcn'"):
        build_encoder("gcn", 3, 3, heads=2, a=1)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"num_layers": 0}, "num_layers must be at least 1, got 0"),
        ({"hidden_channels": 2.5}, "hidden_channels must be an integer, got 2.5"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"jk": "max"}, "jk must be 'cat' or 'none', got 'max'"),
        ({"act": "relux"}, "unknown activation 'relux'"),
    ],
)
def test_invalid_shared_option_values(options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_encoder("gcn", 3, 3, **options)


def test_act_option_and_kwargs():
    encoder = build_encoder("l2gcn", 3, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.3})
    assert isinstance(encoder.act, torch.nn.LeakyReLU) and encoder.act.negative_slope == 0.3
    assert isinstance(build_encoder("gat", 3, 3, act="identity").act, torch.nn.Identity)
    assert build_encoder("gcn", 3, 3, jk="none").lin is None


def test_register_encoder_rejects_non_encoders():
    with pytest.raises(TypeError, match="LabelEncoder subclass"):
        register_encoder("not-an-encoder")(int)
    assert "not-an-encoder" not in available_encoders()


def test_registered_name_is_used_in_messages(monkeypatch):
    monkeypatch.setattr(ENCODERS, "_entries", dict(ENCODERS._entries))

    @register_encoder("Tiny")
    class Tiny(LabelEncoder):
        def init_conv(self, in_channels, out_channels):
            return torch.nn.Linear(in_channels, out_channels)

    assert Tiny.encoder_name == "tiny" and "tiny" in available_encoders()
    with pytest.raises(ConfigError, match="for encoder 'tiny'; accepted options: act, act_kwargs, "
                                          "dropout, hidden_channels, jk, num_layers$"):
        build_encoder("tiny", 2, 2, heads=1)


def test_mean_pairwise_cosine():
    rows = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    pairs = [0.0, 2 ** -0.5, 2 ** -0.5]  # (0,1), (0,2), (1,2)
    assert mean_pairwise_cosine(rows) == pytest.approx(sum(pairs) / 3)
    assert mean_pairwise_cosine(torch.ones(4, 3)) == pytest.approx(1.0)


def test_describe_encoders_counts_parameters():
    rows = describe_encoders(in_channels=6, out_channels=4, num_layers=2)
    assert [r.name for r in rows] == available_encoders()
    by_name = {r.name: r for r in rows}
    # l2gcn: per layer W (in*d + d) + two branches (d*d + d each); head 2d*d + d
    d = 4
    expected = (6 * d + d + 2 * (d * d + d)) + (d * d + d + 2 * (d * d + d)) + (2 * d * d + d)
    assert by_name["l2gcn"].num_parameters == expected
    # gcn: per layer Θ (in*d) + b (d); head 2d*d + d
    assert by_name["gcn"].num_parameters == (6 * d + d) + (d * d + d) + (2 * d * d + d)
    assert all(r.output_shape is None and r.mean_cosine is None for r in rows)


def test_describe_encoders_on_a_graph_keeps_global_rng():
    from torch_geometric.data import Data

    graph = Data(x=torch.randn(5, 6), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
                 edge_weight=torch.ones(3))
    state = torch.random.get_rng_state()
    rows = describe_encoders(out_channels=4, num_layers=2, graph=graph)
    assert torch.equal(state, torch.random.get_rng_state())
    for row in rows:
        assert row.output_shape == (5, 4) and -1.0 <= row.mean_cosine <= 1.0


def test_cli_lists_every_encoder_with_its_parameter_count():
    result = CliRunner().invoke(cli, ["encoders", "--out-channels", "8", "--num-layers", "2"])
    assert result.exit_code == 0, result.output
    assert "in_channels=300, out_channels=8, num_layers=2" in result.output
    for row in describe_encoders(300, 8, 2):
        assert f"{row.num_parameters:,d} parameters" in result.output
        assert row.name in result.output


def test_cli_with_a_dataset_runs_each_encoder_on_its_label_graph():
    result = CliRunner().invoke(cli, ["encoders", "--dataset", "voc", "--out-channels", "8",
                                      "--num-layers", "1"])
    assert result.exit_code == 0, result.output
    assert "label graph: voc, 20 labels" in result.output
    assert result.output.count("output 20x8, mean row cosine") == len(available_encoders())


def test_cli_rejects_an_unknown_dataset_in_one_line(monkeypatch, capsys):
    from gcnretrieval.cli import main

    monkeypatch.setattr("sys.argv", ["gcnretrieval", "encoders", "--dataset", "vocc"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown label vocabulary 'vocc'") and err.count("\n") == 1
