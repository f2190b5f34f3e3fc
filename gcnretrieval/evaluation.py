"""A model's retrieval mAPs on a split: each modality's embeddings query the other's."""
from __future__ import annotations

import torch
from torch import Tensor

from gcnretrieval.data import Split
from gcnretrieval.data.torch_dataset import PairDataset, batch_loader
from gcnretrieval.defaults import EMBED_BATCH_SIZE
from gcnretrieval.metrics import retrieval_report
from gcnretrieval.models.onednn import onednn_linear, use_onednn_linear

__all__ = ["embed_split", "evaluate_split"]


@torch.no_grad()
def embed_split(model: torch.nn.Module, split: Split | PairDataset, device: torch.device | None = None,
                batch_size: int = EMBED_BATCH_SIZE) -> tuple[Tensor, Tensor]:
    """Image and text embeddings of a split (eval mode, batched, no gradient; float32 CPU products
    through oneDNN where it is preferred, :func:`~gcnretrieval.models.onednn.use_onednn_linear`)."""
    device = device or next(model.parameters()).device
    pairs = split if isinstance(split, PairDataset) else PairDataset(split, device)
    was_training = model.training
    model.eval()
    try:
        with onednn_linear(use_onednn_linear(pairs.device)):
            batches = [(model.embed_image(image), model.embed_text(text))
                       for image, text, _ in batch_loader(pairs, batch_size=batch_size)]
    finally:
        model.train(was_training)
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def evaluate_split(model: torch.nn.Module, split: Split | PairDataset, device: torch.device | None = None,
                   batch_size: int = EMBED_BATCH_SIZE) -> dict[str, float]:
    """``{"i2t_map", "t2i_map", "avg_map"}`` of a split (each modality queries the other), on ``device``."""
    image, text = embed_split(model, split, device, batch_size)
    labels = torch.as_tensor(split.labels, dtype=torch.float32, device=image.device)
    return retrieval_report(image, text, labels)
