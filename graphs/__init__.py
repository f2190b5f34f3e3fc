"""Label-graph data shipped with gcnretrieval (installed as ``gcnretrieval.graphdata``); see PROVENANCE.md."""
