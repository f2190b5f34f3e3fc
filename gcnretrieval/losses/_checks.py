"""Input checks shared by the loss terms: one clear error per mistake."""
from __future__ import annotations

from torch import Tensor

from gcnretrieval.checks import check_choice, check_interval, check_non_negative, check_positive, values_readable
from gcnretrieval.errors import DataError

__all__ = ["check_choice", "check_embedding_pair", "check_interval", "check_labels", "check_matrix",
           "check_non_negative", "check_positive", "require_field"]


def check_labels(labels: Tensor, num_rows: int | None = None, what: str = "features") -> None:
    """Labels must be a 2-D multi-hot 0/1 matrix with ``num_rows`` rows."""
    if not isinstance(labels, Tensor) or labels.dim() != 2:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise DataError(f"labels must be a 2-D (n, C) multi-hot tensor, got {shape}; one-hot encode class indices first")
    if num_rows is not None and labels.size(0) != num_rows:
        raise DataError(
            f"{what} have {num_rows} rows but labels have {labels.size(0)}; pass one label row per sample"
        )
    if labels.numel() and values_readable(labels) and not bool(((labels == 0) | (labels == 1)).all()):
        raise DataError("labels must be multi-hot with values 0 or 1 only; binarise them (labels > 0) first")


def check_matrix(name: str, tensor: Tensor) -> None:
    """``tensor`` must be a 2-D floating-point tensor."""
    if not isinstance(tensor, Tensor) or tensor.dim() != 2:
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise DataError(f"{name} must be a 2-D (n, d) tensor, got {shape}")
    if not tensor.is_floating_point():
        raise DataError(f"{name} must be a floating-point tensor, got {tensor.dtype}; cast it with .float()")


def require_field(output: object, field: str) -> Tensor:
    """Fetch ``output.<field>``, raising :class:`DataError` if it is missing."""
    value = getattr(output, field, None)
    if value is None:
        raise DataError(f"the model output has no '{field}'; this loss term needs it")
    return value


def check_embedding_pair(image: Tensor, text: Tensor, labels: Tensor) -> None:
    """Image and text embeddings of one batch: 2-D floating point, same shape, one label row each."""
    check_matrix("image features", image)
    check_matrix("text features", text)
    if image.shape != text.shape:
        raise DataError(
            f"image features {tuple(image.shape)} and text features {tuple(text.shape)} differ in shape; "
            "project both modalities to the same (n, d)"
        )
    check_labels(labels, image.size(0), "features")
