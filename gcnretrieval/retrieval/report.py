"""A self-contained HTML page of a run: its test mAPs, training curves and sample searches.

:func:`write_report` writes one HTML file with everything embedded (figures and
thumbnails as base64 ``data:`` URIs, inline CSS, no script, no external address), so it
can be mailed or archived alone. Sample queries are spread evenly over the test split
in both directions; each shows its top-``k`` results, the relevant ones (sharing a label
with the query) framed in green with a check mark, the others in grey with a cross.
"""
from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

import numpy as np

from gcnretrieval.defaults import BEST_CHECKPOINT, DEFAULT_DEVICE
from gcnretrieval.errors import ConfigError
from gcnretrieval.files import write_text
from gcnretrieval.metrics import METRIC_KEYS
from gcnretrieval.retrieval.retriever import Retriever, SearchResult
from gcnretrieval.training.figures import HISTORY_FIGURES
from gcnretrieval.training.rundir import RunDirectory

log = logging.getLogger(__name__)

__all__ = ["write_report"]

_MAX_WORDS = 12

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto;
       max-width: 1240px; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin-top: 0; }
table.metrics { border-collapse: collapse; margin: 8px 0; }
table.metrics th, table.metrics td { border: 1px solid #ccc; padding: 6px 14px; text-align: center; }
table.metrics th { background: #f3f3f3; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.figures img { height: 300px; width: auto; max-width: 100%; border: 1px solid #ddd; }
.query-row { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; margin: 10px 0 18px;
             padding-bottom: 12px; border-bottom: 1px dashed #ddd; }
.card { width: 112px; border: 3px solid #bbb; border-radius: 6px; padding: 4px; font-size: 11px;
        background: #fff; overflow-wrap: anywhere; }
.card img { width: 104px; height: 104px; object-fit: cover; display: block; border-radius: 3px; }
.card.query { border-color: #2b6cb0; background: #ebf4ff; }
.card.relevant { border-color: #2f9e44; }
.card.irrelevant { border-color: #c9c9c9; background: #fafafa; }
.mark { font-weight: bold; font-size: 13px; }
.relevant .mark { color: #2f9e44; }
.irrelevant .mark { color: #999; }
.labels { color: #444; font-style: italic; }
.words { color: #222; }
.summary { font-size: 12px; color: #555; width: 100%; }
.legend { font-size: 13px; color: #444; }
"""


def _data_uri(path: Path) -> str:
    kind = "png" if path.suffix.lower() == ".png" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _words(text: str | None) -> str:
    if not text:
        return ""
    words = text.split()
    short = " ".join(words[:_MAX_WORDS]) + (" …" if len(words) > _MAX_WORDS else "")
    return f'<div class="words" title="{html.escape(text)}">{html.escape(short)}</div>'


def _card(retriever: Retriever, modality: str, index: int, *, css: str, head: str) -> str:
    """One item of the test split as a card: thumbnail (image) or words (text), labels."""
    parts = [f'<div class="{css}">', head]
    thumbnail = retriever.sources.thumbnail(index) if modality == "image" else None
    description = retriever.describe(modality, index)
    if thumbnail is not None:
        name = html.escape(description or "")
        parts.append(f'<img src="{_data_uri(thumbnail)}" alt="{name}" title="{name}">')
    elif modality == "image":
        parts.append(f"<div>image {html.escape(description or f'#{index}')}</div>")
    else:
        parts.append(_words(description) or f"<div>text #{index}</div>")
    labels = ", ".join(retriever.item_labels(index)) or "no label"
    parts.append(f'<div class="labels">{html.escape(labels)}</div></div>')
    return "".join(parts)


def _query_row(retriever: Retriever, result: SearchResult) -> str:
    query = result.query
    modality, target = query["modality"], result.database["modality"]
    cards = [_card(retriever, modality, query["index"], css="card query",
                   head="<div><b>query</b></div>")]
    relevant = 0
    for hit in result.hits:
        relevant += bool(hit.relevant)
        mark = "✓" if hit.relevant else "✗"
        css = "card relevant" if hit.relevant else "card irrelevant"
        head = f'<div><span class="mark">{mark}</span> #{hit.rank} · {hit.score:.3f}</div>'
        cards.append(_card(retriever, target, hit.index, css=css, head=head))
    summary = (f'<div class="summary">{relevant} of {len(result.hits)} results relevant '
               f"(share a label with the query)</div>")
    return f'<div class="query-row" data-modality="{modality}">' + "".join(cards) + summary + "</div>"


def _metrics_table(final: dict[str, Any]) -> str:
    test = final.get("test", {})
    cells = "".join(f'<td class="map">{float(test[key]):.4f}</td>' for key in METRIC_KEYS)
    return ('<table class="metrics" id="metrics"><thead><tr><th>image → text</th><th>text → image</th>'
            "<th>mean</th><th>selected epoch</th><th>selected on</th></tr></thead><tbody><tr>"
            f'{cells}<td>{html.escape(str(final.get("selected_epoch")))}</td>'
            f'<td>{html.escape(str(final.get("selected_on")))}</td></tr></tbody></table>')


def _describe_run(retriever: Retriever, run_dir: Path) -> str:
    config_path = run_dir / "config.resolved.json"
    config = RunDirectory(run_dir).read_json(config_path.name) if config_path.is_file() else {}
    data = config.get("data", {})
    encoder = config.get("encoder", {})
    dataset = data.get("dataset") or data.get("source", "?")
    return (f"data <b>{html.escape(str(dataset))}</b> · test split of {len(retriever)} pairs, "
            f"{len(retriever.label_names)} labels · encoder <b>{html.escape(str(encoder.get('name', '?')))}</b> "
            f"· checkpoint <b>{html.escape(str(retriever.checkpoint))}</b>")


def write_report(run_dir: str | Path, out: str | Path | None = None, *, queries: int = 4, top_k: int = 8,
                 checkpoint: str = BEST_CHECKPOINT, device: str = DEFAULT_DEVICE, index: str = "exact",
                 retriever: Retriever | None = None) -> Path:
    """Write the HTML report of a run (see the module docstring).

    Args:
        run_dir: a directory written by ``gcnretrieval run``.
        out: the HTML file (default ``<run_dir>/report.html``); written atomically.
        queries: sample queries per direction (default ``4``).
        top_k: results shown per query (default ``8``).
        checkpoint: ``"best"`` (default) or ``"last"``.
        device: where the model runs (default ``"auto"``).
        index: ``"exact"`` (default) or ``"faiss"``.
        retriever: a :class:`Retriever` of this run already built (default ``None``: built here).

    Returns:
        The path of the HTML file.
    """
    run_dir = Path(run_dir)
    if queries < 1 or top_k < 1:
        raise ConfigError(f"--queries and --top-k must be at least 1, got {queries} and {top_k}")
    final_path = run_dir / RunDirectory.FINAL
    if run_dir.is_dir() and not final_path.is_file():
        raise ConfigError(f"{run_dir} has no {RunDirectory.FINAL}; finish the run first (gcnretrieval run --resume)")
    if retriever is None:
        retriever = Retriever.from_run(run_dir, checkpoint=checkpoint, device=device, index=index)
    final = RunDirectory(run_dir).read_json(final_path.name)
    title = f"Run {run_dir.resolve().name}"

    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">{_describe_run(retriever, run_dir)}</p>',
            "<h2>Test mAP@all</h2>", _metrics_table(final)]
    figures = [run_dir / RunDirectory.FIGURES_DIR / name for name in HISTORY_FIGURES]
    shown = [f'<img src="{_data_uri(p)}" alt="{p.stem}">' for p in figures if p.is_file()]
    if shown:
        body += ["<h2>Training</h2>", '<div class="figures">' + "".join(shown) + "</div>"]

    count = min(int(queries), len(retriever))
    picks = sorted({int(round(x)) for x in np.linspace(0, len(retriever) - 1, count)})
    body.append('<p class="legend">Sample queries spread over the test split; the database is the test split of the '
                'other modality. <span style="color:#2f9e44">✓ green</span>: shares a label with the query; '
                "✗ grey: does not. Each result shows rank · cosine score.</p>")
    for modality, heading in (("image", "Image → text"), ("text", "Text → image")):
        body.append(f'<h2>{heading} (top {int(top_k)})</h2><div class="direction" data-modality="{modality}">')
        for n in picks:
            body.append(_query_row(retriever, retriever.search_id(n, modality, top_k)))
        body.append("</div>")

    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    path = Path(out) if out is not None else run_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, page)
    log.info("wrote the report of %s to %s", run_dir, path)
    return path
