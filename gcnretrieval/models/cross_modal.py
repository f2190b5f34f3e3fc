r"""The cross-modal retrieval model: projectors, label encoder, generators, discriminators."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gcnretrieval.checks import check_non_negative, check_positive_int, values_readable
from gcnretrieval.encoders import DEFAULT_ENCODER, build_encoder
from gcnretrieval.errors import ConfigError, DataError, GraphError
from gcnretrieval.models.discriminators import Discriminator, DiscriminatorAct, tapered_widths
from gcnretrieval.models.generators import Generator
from gcnretrieval.models.label_graph import StaticLabelGraph
from gcnretrieval.models.projectors import Projector


@dataclass
class CrossModalOutput:
    r"""Everything one forward pass of :class:`CrossModalModel` produces.

    Attributes:
        image_embedding: projector outputs :math:`\mathbf{v}`, :math:`(n, d)`.
        text_embedding: projector outputs :math:`\mathbf{t}`, :math:`(n, d)`.
        label_embedding: label-encoder output rows :math:`\mathbf{c}_j`, :math:`(C, d)`.
        image_label_scores: :math:`\cos(\mathbf{v}_i, \mathbf{c}_j)`, :math:`(n, C)`.
        text_label_scores: :math:`\cos(\mathbf{t}_i, \mathbf{c}_j)`, :math:`(n, C)`.
        image_real_logits: :math:`D_v(\mathbf{x}^v)`, :math:`(n, 2)`.
        image_fake_logits: :math:`D_v(G_{tv}(\mathbf{t}))`, :math:`(n, 2)`.
        text_fake_logits: :math:`D_t(G_{vt}(\mathbf{v}))`, :math:`(n, 2)`.
        text_real_logits: :math:`D_t(\mathbf{x}^t)`, :math:`(n, 2)`.
    """

    image_embedding: Tensor
    text_embedding: Tensor
    label_embedding: Tensor
    image_label_scores: Tensor
    text_label_scores: Tensor
    image_real_logits: Tensor
    image_fake_logits: Tensor
    text_fake_logits: Tensor
    text_real_logits: Tensor


def cosine_scores(embedding: Tensor, label_embedding: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Cosine similarity of every row of ``embedding`` with every label row.

    .. math::
        \hat{y}_{ij} = \frac{\mathbf{v}_i^\top \mathbf{c}_j}
        {\max(\lVert\mathbf{v}_i\rVert, \epsilon)\,\max(\lVert\mathbf{c}_j\rVert, \epsilon)}

    An all-zero row (possible after a ReLU) scores 0 against every label, with a
    finite gradient. The norms divide the :math:`(n, C)` product, not the :math:`(n, d)`
    embeddings: fewer elementwise passes over wide matrices.

    Shapes:
        - **embedding:** :math:`(n, d)`; **label_embedding:** :math:`(C, d)`
        - **output:** :math:`(n, C)`
    """
    norms = embedding.norm(dim=-1).clamp_min(eps)
    label_norms = label_embedding.norm(dim=-1).clamp_min(eps)
    return (embedding @ label_embedding.t()) / (norms[:, None] * label_norms[None, :])


def _label_graph_module(label_graph: Data | nn.Module) -> nn.Module:
    if isinstance(label_graph, Data):
        return StaticLabelGraph(label_graph)
    if isinstance(label_graph, nn.Module):
        return label_graph
    raise GraphError(f"label_graph must be a torch_geometric Data or an AdaptiveLabelGraph, got "
                     f"{type(label_graph).__name__}; build it with gcnretrieval.build_label_graph")


class CrossModalModel(nn.Module):
    r"""Label-graph cross-modal retrieval model (DAGNN / I-GNN family, L2-GCN encoder).

    .. math::
        \mathbf{v} = f_v(\mathbf{x}^v), \quad \mathbf{t} = f_t(\mathbf{x}^t), \quad
        \mathbf{C} = E(\mathcal{G}), \quad
        \hat{y}^v_{ij} = \cos(\mathbf{v}_i, \mathbf{c}_j), \quad
        \hat{y}^t_{ij} = \cos(\mathbf{t}_i, \mathbf{c}_j)

    and, behind gradient reversal, :math:`D_v(\mathbf{x}^v)`,
    :math:`D_v(G_{tv}(\mathbf{t}))`, :math:`D_t(G_{vt}(\mathbf{v}))`,
    :math:`D_t(\mathbf{x}^t)`. The label encoder runs once per forward pass, on the
    whole label graph. Retrieval uses :math:`\mathbf{v}` and :math:`\mathbf{t}` only
    (:meth:`embed_image`, :meth:`embed_text`): no graph is needed at query time.

    Discriminators are called on real and generated batches separately, so in
    training mode each call's BatchNorm normalises with that batch's own statistics.

    Args:
        image_dim (int): image feature size :math:`d_v` (read it from the data).
        text_dim (int): text feature size :math:`d_t` (read it from the data).
        label_graph (torch_geometric.data.Data or nn.Module): a fixed label graph
            (kept as non-persistent buffers, see
            :class:`~gcnretrieval.models.label_graph.StaticLabelGraph`) or a module
            returning ``(x, edge_index, edge_weight)`` on each call, such as
            :class:`~gcnretrieval.graphs.AdaptiveLabelGraph`.
        encoder (str or nn.Module, optional): registered label-encoder name, or a
            ready encoder module. (default: :obj:`"l2gcn"`)
        encoder_options (dict, optional): keyword options for
            :func:`~gcnretrieval.encoders.build_encoder` (``num_layers``, ...).
            (default: :obj:`None`)
        common_dim (int, optional): common dimension :math:`d`. (default: :obj:`1024`)
        projector_layers (int, optional): Linear -> ReLU layers per projector.
            (default: :obj:`1`)
        grl_coefficient (float, optional): gradient reversal coefficient.
            (default: :obj:`1.0`)
        image_to_text_hidden (int, optional): hidden width of :math:`G_{vt}`.
            (default: :obj:`512`)
        text_to_image_hidden (int, optional): hidden width of :math:`G_{tv}`.
            (default: :obj:`2048`)
        image_discriminator_hidden (Sequence[int], optional): hidden widths of
            :math:`D_v`; :obj:`None` gives :math:`(d_v/4, d_v/16)`, the reference code's rule
            (equal to the default for :math:`d_v = 4096`). (default: :obj:`(1024, 256)`)
        text_discriminator_hidden (Sequence[int], optional): hidden widths of
            :math:`D_t`; :obj:`None` gives :math:`(d_t/4, d_t/16)`. (default: :obj:`None`)
        batch_norm (bool, optional): the input BatchNorm1d of the projectors, generators
            and discriminators; DAGNN's code (AAAI 2021) has none. (default: :obj:`True`)
        discriminator_act (str, optional): hidden activation of the discriminators,
            ``"relu"`` or ``"identity"`` (DAGNN's code). (default: :obj:`"relu"`)

    Shapes:
        - **image:** :math:`(n, d_v)`; **text:** :math:`(n, d_t)`
        - **output:** :class:`CrossModalOutput`
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        label_graph: Data | nn.Module,
        encoder: str | nn.Module = DEFAULT_ENCODER,
        encoder_options: dict[str, Any] | None = None,
        common_dim: int = 1024,
        projector_layers: int = 1,
        grl_coefficient: float = 1.0,
        *,
        image_to_text_hidden: int = 512,
        text_to_image_hidden: int = 2048,
        image_discriminator_hidden: Sequence[int] | None = (1024, 256),
        text_discriminator_hidden: Sequence[int] | None = None,
        batch_norm: bool = True,
        discriminator_act: DiscriminatorAct = "relu",
    ) -> None:
        super().__init__()
        self.image_dim = check_positive_int("image_dim", image_dim)
        self.text_dim = check_positive_int("text_dim", text_dim)
        self.common_dim = check_positive_int("common_dim", common_dim)
        self.projector_layers = check_positive_int("projector_layers", projector_layers)
        check_non_negative("grl_coefficient", grl_coefficient)

        self.label_graph = _label_graph_module(label_graph)
        with torch.no_grad():
            node_x, _, _ = self.label_graph()
        self.num_labels = int(node_x.size(0))
        self.node_feature_dim = int(node_x.size(1))

        if isinstance(encoder, nn.Module):
            if encoder_options:
                raise ConfigError("encoder_options apply only when encoder is given by name")
            self.encoder_name = type(encoder).__name__
            self.label_encoder = encoder
        else:
            self.encoder_name = str(encoder)
            self.label_encoder = build_encoder(encoder, self.node_feature_dim, self.common_dim,
                                               **dict(encoder_options or {}))

        self.batch_norm = bool(batch_norm)
        norm = {"batch_norm": self.batch_norm}
        self.image_projector = Projector(self.image_dim, self.common_dim, self.projector_layers, **norm)
        self.text_projector = Projector(self.text_dim, self.common_dim, self.projector_layers, **norm)
        self.image_to_text = Generator(self.common_dim, image_to_text_hidden, self.text_dim,
                                       negative_slope=0.2, **norm)
        self.text_to_image = Generator(self.common_dim, text_to_image_hidden, self.image_dim,
                                       negative_slope=0.0, **norm)
        if image_discriminator_hidden is None:
            image_discriminator_hidden = tapered_widths(self.image_dim)
        if text_discriminator_hidden is None:
            text_discriminator_hidden = tapered_widths(self.text_dim)
        self.image_discriminator = Discriminator(self.image_dim, image_discriminator_hidden,
                                                 grl_coefficient=grl_coefficient, act=discriminator_act, **norm)
        self.text_discriminator = Discriminator(self.text_dim, text_discriminator_hidden,
                                                grl_coefficient=grl_coefficient, act=discriminator_act, **norm)

    # ------------------------------------------------------------------ setup
    def reset_parameters(self) -> None:
        for module in (self.image_projector, self.text_projector, self.image_to_text,
                       self.text_to_image, self.image_discriminator, self.text_discriminator,
                       self.label_encoder, self.label_graph):
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()

    @property
    def grl_coefficient(self) -> float:
        """Gradient reversal coefficient shared by both discriminators (settable)."""
        return self.image_discriminator.grl.coefficient

    @grl_coefficient.setter
    def grl_coefficient(self, value: float) -> None:
        self.image_discriminator.grl.set_coefficient(value)
        self.text_discriminator.grl.set_coefficient(value)

    def parameter_groups(self) -> dict[str, nn.Module]:
        """The model's parts by role: projectors, generators, discriminators, encoder, graph."""
        return {
            "projectors": nn.ModuleList([self.image_projector, self.text_projector]),
            "generators": nn.ModuleList([self.image_to_text, self.text_to_image]),
            "discriminators": nn.ModuleList([self.image_discriminator, self.text_discriminator]),
            "encoder": self.label_encoder,
            "label_graph": self.label_graph,
        }

    # ------------------------------------------------------------------ checks
    def _features(self, x: Tensor, expected: int, modality: str) -> Tensor:
        if not isinstance(x, Tensor):
            raise DataError(f"{modality} features must be a torch.Tensor, got {type(x).__name__}; "
                            "convert with torch.as_tensor")
        if x.dim() != 2:
            raise DataError(f"{modality} features must be a 2-D (batch, features) tensor, got shape "
                            f"{tuple(x.shape)}")
        if x.size(1) != expected:
            raise DataError(f"{modality} features have {x.size(1)} columns but the model expects "
                            f"{modality}_dim={expected}; build the model with the data's "
                            f"{modality} dimension")
        if self.training and x.size(0) < 2:
            raise DataError(f"a training batch needs at least 2 {modality} rows (BatchNorm), got "
                            f"{x.size(0)}; drop the last incomplete batch or call model.eval()")
        dtype = self.image_projector.lins[0].weight.dtype
        if x.dtype != dtype:
            x = x.to(dtype)
        if values_readable(x) and not _all_finite(x):
            raise DataError(f"{modality} features contain NaN or infinite values; clean the data "
                            "(e.g. numpy.nan_to_num) before using it")
        return x

    # ------------------------------------------------------------------ forward
    def embed_image(self, image: Tensor) -> Tensor:
        """Common-space image embeddings :math:`\\mathbf{v}` (projector only)."""
        return self.image_projector(self._features(image, self.image_dim, "image"))

    def embed_text(self, text: Tensor) -> Tensor:
        """Common-space text embeddings :math:`\\mathbf{t}` (projector only)."""
        return self.text_projector(self._features(text, self.text_dim, "text"))

    def encode_labels(self) -> Tensor:
        """Label embeddings :math:`\\mathbf{C} = E(\\mathcal{G})`, shape :math:`(C, d)`."""
        x, edge_index, edge_weight = self.label_graph()
        return self.label_encoder(x, edge_index, edge_weight)

    def forward(self, image: Tensor, text: Tensor) -> CrossModalOutput:
        image = self._features(image, self.image_dim, "image")
        text = self._features(text, self.text_dim, "text")
        if image.size(0) != text.size(0):
            raise DataError(f"image batch has {image.size(0)} rows but text batch has "
                            f"{text.size(0)}; image and text must be paired row by row")

        v = self.image_projector(image)
        t = self.text_projector(text)
        c = self.encode_labels()  # once per forward, shared by both modalities

        return CrossModalOutput(
            image_embedding=v,
            text_embedding=t,
            label_embedding=c,
            image_label_scores=cosine_scores(v, c),
            text_label_scores=cosine_scores(t, c),
            image_real_logits=self.image_discriminator(image),
            image_fake_logits=self.image_discriminator(self.text_to_image(t)),
            text_fake_logits=self.text_discriminator(self.image_to_text(v)),
            text_real_logits=self.text_discriminator(text),
        )

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(image_dim={self.image_dim}, text_dim={self.text_dim}, "
                f"num_labels={self.num_labels}, common_dim={self.common_dim}, "
                f"encoder={self.encoder_name!r})")


def _all_finite(x: Tensor) -> bool:
    """Whether every entry of ``x`` is finite, in one summation pass.

    A NaN or an infinity makes the sum non-finite (``inf - inf`` is NaN), so a finite sum
    proves every entry finite; only a non-finite sum (which finite entries can also give, by
    overflow) runs the exact elementwise test.
    """
    if bool(torch.isfinite(x.sum())):
        return True
    return bool(torch.isfinite(x).all())
