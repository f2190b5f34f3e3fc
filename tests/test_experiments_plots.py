"""Figures of experiments: what is drawn, read back from the matplotlib figure."""
from __future__ import annotations

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
