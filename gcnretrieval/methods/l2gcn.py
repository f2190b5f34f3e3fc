"""``l2gcn``: the toolkit's own method, L2-GCN label encoder + Circle-Soft objective.

"Enhancing cross-modal retrieval via label graph optimization and hybrid loss functions" (Sci. Rep.
2026). Its model and objective are the recipe's own (``[model]``/``[loss]`` as written, the label
graph from ``[graph]``) with the encoder set to ``l2gcn``: a comparison on a recipe tuned for this
method runs it with that recipe's values.
"""
from gcnretrieval.methods.base import Method, register_method

register_method(Method(
    name="l2gcn",
    paper="L2-GCN + Circle-Soft: Enhancing cross-modal retrieval via label graph optimization and hybrid loss "
          "functions, Sci. Rep. 2026",
    summary="label-graph classifiers from an L2-GCN encoder, Circle loss within and soft contrastive loss across "
            "modalities, classification and adversarial terms (the recipe's own model and objective)",
    preset={"encoder.name": "l2gcn"},
    replaces=(),
))
