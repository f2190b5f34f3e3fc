"""Drawing a label graph with networkx and matplotlib (Agg backend, no display needed)."""
from __future__ import annotations

import os
from pathlib import Path

from torch_geometric.data import Data

from gcnretrieval.errors import GraphError
from gcnretrieval.files import atomic_path
from gcnretrieval.graphs.summary import summarize_label_graph


def plot_label_graph(data: Data, path: str | os.PathLike, *, title: str | None = None,
                     seed: int = 0, dpi: int = 150) -> Path:
    """Draw a label graph to an image file and return its path.

    Nodes are labels (named), arrows are messages :math:`j \\to i` (self-loops
    omitted), node size grows with the in-degree and isolated labels are grey. The file
    is written to a temporary name and renamed, so a failed call leaves nothing behind.

    Args:
        data: label graph from :func:`~gcnretrieval.graphs.build_label_graph`.
        path: output file; the suffix picks the format (``.png``, ``.pdf``, ``.svg``).
        title (str, optional): figure title. (default: ``None``)
        seed (int): seed of the spring layout. (default: ``0``)
        dpi (int): resolution of raster formats. (default: ``150``)
    """
    import networkx as nx  # imported here: plotting is optional and slow to import
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from torch_geometric.utils import to_networkx

    path = Path(path)
    fig = Figure(figsize=(12, 12) if data.num_nodes > 40 else (9, 9))
    canvas = FigureCanvasAgg(fig)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in canvas.get_supported_filetypes():
        raise GraphError(f"cannot write a plot to '{path}': unsupported file type '{path.suffix}'; "
                         "use .png, .pdf or .svg")

    summary = summarize_label_graph(data)
    graph = to_networkx(data, to_undirected=False, remove_self_loops=True)
    names = dict(enumerate(summary.label_names))
    isolated = set(summary.isolated)
    layout = _layout(nx, graph, [n for n in graph.nodes if names[n] in isolated], seed)
    colours = ["#bbbbbb" if names[n] in isolated else "#4c8fd6" for n in graph.nodes]
    sizes = [120 + 40 * summary.in_degree[n] for n in graph.nodes]

    ax = fig.add_subplot(1, 1, 1)
    nx.draw_networkx_edges(graph, layout, ax=ax, edge_color="#888888", width=0.7, arrows=True,
                           arrowsize=8, node_size=sizes, connectionstyle="arc3,rad=0.08")
    nx.draw_networkx_nodes(graph, layout, ax=ax, node_color=colours, node_size=sizes)
    nx.draw_networkx_labels(graph, layout, labels=names, ax=ax, font_size=8)
    heading = title or "label graph"
    ax.set_title(f"{heading}\n{summary.num_nodes} labels, {summary.num_edges} directed edges, "
                 f"{len(summary.isolated)} isolated (grey)")
    ax.set_axis_off()
    fig.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path


def _layout(nx, graph, isolated: list[int], seed: int) -> dict:
    """Largest component in the unit square, smaller components and isolated labels in rows below."""
    connected = graph.subgraph([n for n in graph.nodes if n not in set(isolated)]).to_undirected()
    components = sorted((sorted(c) for c in nx.connected_components(connected)), key=lambda c: (-len(c), c))
    layout: dict = {}
    y = -1.0
    if components:
        main = connected.subgraph(components[0])
        layout.update(nx.kamada_kawai_layout(main, scale=1.0) if len(main) > 2
                      else nx.spring_layout(main, seed=seed, scale=0.4))
        y = min(p[1] for p in layout.values())
    x = -1.0
    y -= 0.35
    for component in components[1:]:
        width = 0.25 * len(component) ** 0.5
        if x + width > 1.0:
            x, y = -1.0, y - 0.35
        sub = nx.spring_layout(connected.subgraph(component), seed=seed, scale=width / 2)
        for node, (px, py) in sub.items():
            layout[node] = (x + width / 2 + px, y + py)
        x += width + 0.15
    if len(components) > 1:
        y -= 0.35
    per_row = 8
    for position, node in enumerate(isolated):
        row, column = divmod(position, per_row)
        layout[node] = (-1.0 + 2.0 * (column + 0.5) / per_row, y - 0.2 * row)
    return layout
