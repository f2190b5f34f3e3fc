"""Counts that describe a label graph: edges, isolated labels, degrees."""
from __future__ import annotations

from dataclasses import dataclass

from torch_geometric.data import Data

from gcnretrieval.errors import GraphError


@dataclass(frozen=True)
class LabelGraphSummary:
    """Summary of a directed label graph (self-loops are not counted as edges).

    Attributes:
        label_names: the node names.
        num_nodes: number of labels :math:`C`.
        num_edges: directed edges :math:`j \\to i` with :math:`i \\ne j`.
        num_undirected_pairs: unordered pairs :math:`\\{i, j\\}` joined in at least one direction.
        num_self_loops: self-loop edges.
        in_degree: per label, the number of other labels it receives messages from.
        out_degree: per label, the number of other labels it sends messages to.
        isolated: labels with no neighbour other than themselves, in node order.

    A label with in-degree 0 but some out-degree is not isolated, yet an encoder's
    neighbour branch gives it nothing: :attr:`without_messages` lists those too.
    """

    label_names: list[str]
    num_nodes: int
    num_edges: int
    num_undirected_pairs: int
    num_self_loops: int
    in_degree: list[int]
    out_degree: list[int]
    isolated: list[str]

    @property
    def without_messages(self) -> list[str]:
        """Labels that receive no message from another label (in-degree 0), in node order."""
        return [name for name, d_in in zip(self.label_names, self.in_degree) if d_in == 0]

    def format(self) -> str:
        """Multi-line human-readable text (what ``gcnretrieval graph`` prints)."""
        width = max([len(n) for n in self.label_names] + [5])
        lines = [
            f"nodes: {self.num_nodes}",
            f"edges: {self.num_edges} directed (excluding self-loops), "
            f"{self.num_undirected_pairs} undirected pairs",
            f"isolated labels: {len(self.isolated)}" + (f" ({', '.join(self.isolated)})" if self.isolated else ""),
            f"labels receiving no message (in-degree 0): {len(self.without_messages)}",
            "degrees (in = labels it borrows from, out = labels borrowing from it):",
            f"  {'label':<{width}}  {'in':>3}  {'out':>3}",
        ]
        for name, d_in, d_out in zip(self.label_names, self.in_degree, self.out_degree):
            lines.append(f"  {name:<{width}}  {d_in:>3}  {d_out:>3}")
        return "\n".join(lines)


def summarize_label_graph(data: Data) -> LabelGraphSummary:
    """Summarise a label graph built by :func:`~gcnretrieval.graphs.build_label_graph`.

    Args:
        data: graph with ``edge_index`` (``[0]`` = source, ``[1]`` = target) and
            ``num_nodes``; ``label_names`` are used when present.
    """
    edge_index = getattr(data, "edge_index", None)
    num_nodes = data.num_nodes
    if edge_index is None or num_nodes is None:
        raise GraphError("label graph needs edge_index and num_nodes; build it with "
                         "gcnretrieval.build_label_graph")
    names = list(getattr(data, "label_names", None) or [f"label_{j}" for j in range(num_nodes)])
    in_degree = [0] * num_nodes
    out_degree = [0] * num_nodes
    pairs: set[tuple[int, int]] = set()
    directed: set[tuple[int, int]] = set()
    self_loops = 0
    for source, target in edge_index.t().tolist():
        if source == target:
            self_loops += 1
            continue
        if (source, target) in directed:  # duplicate edge
            continue
        directed.add((source, target))
        out_degree[source] += 1
        in_degree[target] += 1
        pairs.add((min(source, target), max(source, target)))
    isolated = [names[j] for j in range(num_nodes) if in_degree[j] == 0 and out_degree[j] == 0]
    return LabelGraphSummary(label_names=names, num_nodes=num_nodes, num_edges=len(directed),
                             num_undirected_pairs=len(pairs), num_self_loops=self_loops,
                             in_degree=in_degree, out_degree=out_degree, isolated=isolated)
