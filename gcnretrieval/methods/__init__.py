"""Methods ``compare`` runs: the toolkit's own and the published ones it is compared with.

Each module registers one method (or a family of closed-form ones) with :func:`register_method`;
importing this package registers them all (and their models and objectives).
"""
from gcnretrieval.methods.base import METHODS, Method, apply_method, available_methods, register_method
from gcnretrieval.methods import classical, dagnn, ignn_con, l2gcn  # noqa: F401  (registration)

__all__ = ["METHODS", "Method", "apply_method", "available_methods", "register_method"]
