"""Figures of experiments: what is drawn, read back from the matplotlib figure."""
from __future__ import annotations

import numpy as np

from gcnretrieval.experiments import plots


def test_epoch_curves_draw_one_line_per_run_and_key(tmp_path, monkeypatch):
    drawn = {}

    def capture(figure, path, **options):
        drawn["figure"] = figure
        return path

    monkeypatch.setattr(plots, "write_figure", capture)
    learned = [[{"epoch": 1, "lambda": 0.6, "val_avg_map": 0.5}, {"epoch": 2, "lambda": 0.55, "val_avg_map": 0.52}],
               [{"epoch": 1, "lambda": 0.6, "val_avg_map": 0.49}, {"epoch": 2, "lambda": 0.54, "val_avg_map": 0.51}]]
    fixed = [[{"epoch": 1, "lambda": 0.6, "val_avg_map": None}, {"epoch": 2, "lambda": 0.6, "val_avg_map": 0.5}]]
    path = plots.epoch_curves({"learned": learned, "fixed": fixed}, ["lambda", "val_avg_map"], tmp_path / "c.png")
    assert path == tmp_path / "c.png"
    lam, val = drawn["figure"].axes
    assert [list(line.get_ydata()) for line in lam.lines] == [[0.6, 0.55], [0.6, 0.54], [0.6, 0.6]]
    assert [list(line.get_xdata()) for line in val.lines][2] == [2]  # the missing value is left out
    assert [line.get_color() for line in lam.lines] == ["C0", "C0", "C1"]
    assert [t.get_text() for t in lam.get_legend().get_texts()] == ["learned", "fixed"]


def test_epoch_curves_write_a_png(tmp_path):
    history = [{"epoch": e, "lambda": 0.6 - 0.01 * e} for e in range(1, 6)]
    path = plots.epoch_curves({"one": [history]}, ["lambda"], tmp_path / "curves.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def capture_figures(monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "write_figure", lambda figure, path, **options: figures.append(figure) or path)
    return figures


def sweep_row(lr, dim, value, std=None):
    row = {"values": {"train.lr": lr, "model.common_dim": dim}}
    for index, metric in enumerate(("i2t_map", "t2i_map", "avg_map")):
        row.update({f"{metric}_mean": None if value is None else value + 0.01 * index, f"{metric}_std": std})
    return row


def test_lines_draw_each_map_or_each_series_against_the_swept_key(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    rows = [sweep_row(1e-3, 8, 0.5, 0.01), sweep_row(1e-2, 8, 0.6), sweep_row(1e-3, 16, 0.55, 0.02),
            sweep_row(1e-2, 16, None)]
    plots.lines(rows[:2], "train.lr", tmp_path / "a.png", title="lr")
    plots.lines(rows, "train.lr", tmp_path / "b.png", series_key="model.common_dim")
    by_map, by_series = (figure.axes[0] for figure in figures)
    assert by_map.get_title() == "lr" and by_map.get_xlabel() == "train.lr" and by_map.get_ylabel() == "test mAP@all"
    assert [t.get_text() for t in by_map.get_xticklabels()] == ["0.001", "0.01"]
    assert [[round(y, 6) for y in line.get_ydata()] for line in by_map.lines if line.get_marker() == "o"] == \
        [[0.5, 0.6], [0.51, 0.61], [0.52, 0.62]]
    assert [t.get_text() for t in by_map.get_legend().get_texts()] == ["image → text", "text → image", "mean"]
    drawn = [(list(line.get_xdata()), [round(y, 6) for y in line.get_ydata()])
             for line in by_series.lines if line.get_marker() == "o"]
    assert drawn == [([0.001, 0.01], [0.52, 0.62]), ([0.001], [0.57])]  # the missing mean is left out
    assert [t.get_text() for t in by_series.get_legend().get_texts()] == ["model.common_dim = 8",
                                                                          "model.common_dim = 16"]
    assert by_series.get_ylabel() == "test mean mAP@all"


def test_heatmap_shows_the_mean_of_each_pair_of_values(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    rows = [sweep_row(1e-3, 8, 0.5), sweep_row(1e-2, 8, 0.6), sweep_row(1e-3, 16, 0.7), sweep_row(1e-2, 16, None)]
    plots.heatmap(rows, "model.common_dim", "train.lr", tmp_path / "h.png", metric="i2t_map", title="grid")
    [figure] = figures
    axes = figure.axes[0]
    grid = axes.images[0].get_array()
    assert grid.shape == (2, 2) and not np.isfinite(np.ma.filled(grid, np.nan)[1, 1])  # no value: blank
    assert [[round(float(v), 6) for v in grid[i, :1 + (i == 0)]] for i in range(2)] == [[0.5, 0.6], [0.7]]
    assert sorted(t.get_text() for t in axes.texts) == ["0.500", "0.600", "0.700"]
    assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_title()) == ("train.lr", "model.common_dim", "grid")
    assert [t.get_text() for t in axes.get_yticklabels()] == ["8", "16"]
    assert figure.axes[1].get_ylabel() == "test image → text mAP@all"
