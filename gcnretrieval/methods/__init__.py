"""Methods ``compare`` runs: the toolkit's own and the published ones it is compared with.

Each module registers one method (or a family of closed-form ones) with :func:`register_method`;
importing this package registers them all (and their models and objectives).
"""
from gcnretrieval.methods.base import METHODS, Method, apply_method, available_methods, register_method
# one line per method module (registration on import)
from gcnretrieval.methods import acmr  # noqa: F401
from gcnretrieval.methods import algcn  # noqa: F401
from gcnretrieval.methods import classical  # noqa: F401
from gcnretrieval.methods import dagnn  # noqa: F401
from gcnretrieval.methods import dcca  # noqa: F401
from gcnretrieval.methods import dscmr  # noqa: F401
from gcnretrieval.methods import ignn_con  # noqa: F401
from gcnretrieval.methods import l2gcn  # noqa: F401
from gcnretrieval.methods import mlcca  # noqa: F401

__all__ = ["METHODS", "Method", "apply_method", "available_methods", "register_method"]
