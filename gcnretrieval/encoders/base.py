r"""The :class:`LabelEncoder` base: depth, width, activation, dropout, the JK head and
edge-weight routing, shared by every label encoder.

A concrete encoder only says how to build one layer (:meth:`LabelEncoder.init_conv`)
and whether that layer consumes edge weights as ``edge_weight`` (a scalar per edge) or
as ``edge_attr`` (an ``(E, 1)`` edge feature).
"""
from __future__ import annotations

import inspect
import typing
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.resolver import activation_resolver

from gcnretrieval.checks import check_positive_int
from gcnretrieval.errors import ConfigError, GraphError, InvalidArgument

#: Options accepted by every encoder (the keyword arguments of :class:`LabelEncoder`).
SHARED_OPTIONS: tuple[str, ...] = (
    "num_layers",
    "hidden_channels",
    "act",
    "act_kwargs",
    "dropout",
    "jk",
)

_IDENTITY_NAMES = {"identity", "linear", "none"}


def resolve_activation(
    act: str | Callable | None, act_kwargs: dict[str, Any] | None = None
) -> Callable:
    """Resolve ``act`` with PyG's ``activation_resolver``.

    ``"identity"`` (also ``"linear"``, ``"none"``) gives :class:`torch.nn.Identity`;
    a module or callable is returned as is. Unknown names raise :class:`ConfigError`.
    """
    if isinstance(act, str) and act.lower() in _IDENTITY_NAMES:
        return nn.Identity()
    try:
        return activation_resolver(act, **(act_kwargs or {}))
    except ValueError as err:
        raise ConfigError(
            f"unknown activation {act!r}: use a torch.nn activation name such as "
            f"'relu', 'leaky_relu', 'elu', 'tanh', or 'identity' ({err})"
        ) from None


class LabelEncoder(nn.Module):
    r"""Base class of the label-graph encoders.

    Stacks ``num_layers`` layers built by :meth:`init_conv`,

    .. math::
        \mathbf{H}^{(0)} = \mathbf{X}, \qquad
        \mathbf{H}^{(l)} = \mathrm{dropout}\big(\sigma\big(
            \mathrm{conv}_l(\mathbf{H}^{(l-1)}, \mathbf{A})\big)\big),

    and with ``jk="cat"`` (default) maps the concatenated layer outputs to
    ``out_channels`` with one linear head,

    .. math::
        \mathbf{C} = \big[\mathbf{H}^{(1)} \,\Vert\, \cdots \,\Vert\,
            \mathbf{H}^{(L)}\big] \mathbf{W}_{\mathrm{jk}} + \mathbf{b}_{\mathrm{jk}}.

    With ``jk="cat"`` every layer output is activated (as in PyG's ``BasicGNN``), so all
    concatenated blocks look alike; with ``jk=None`` the last layer maps to
    ``out_channels`` directly and is neither activated nor dropped out. The head has
    Glorot weights and a zero bias.

    Edge weights are routed by two class attributes of the subclass:
    ``supports_edge_weight`` (the layer is called as ``conv(x, edge_index,
    edge_weight=w)``) and ``supports_edge_attr`` (called as ``conv(x, edge_index,
    edge_attr=w.view(-1, 1))``). A layer that takes neither is called as
    ``conv(x, edge_index)``; the encoder then warns once that it ignores the weights.

    Subclasses implement :meth:`init_conv`; its keyword-only parameters are the
    encoder's own options, validated by name at construction.

    Args:
        in_channels (int): size of each input node feature (word vectors: 300).
        out_channels (int): size of each output label embedding.
        num_layers (int, optional): number of graph layers :math:`L`. (default: :obj:`5`)
        hidden_channels (int, optional): width of every layer output; :obj:`None`
            uses ``out_channels``. (default: :obj:`None`)
        act (str or Callable, optional): activation after each layer, resolved with
            PyG's ``activation_resolver``; ``"identity"`` for none; :obj:`None` uses the
            encoder's default (``default_act``). (default: :obj:`None`)
        act_kwargs (dict, optional): keyword arguments for ``act``; :obj:`None` uses the
            encoder's default (``default_act_kwargs``) when ``act`` is also the default.
            (default: :obj:`None`)
        dropout (float, optional): dropout probability after each activation.
            (default: :obj:`0.0`)
        jk (str, optional): ``"cat"`` for the jumping-knowledge concatenation head, or
            :obj:`None` / ``"none"`` for none. (default: :obj:`"cat"`)
        **kwargs: options of the concrete encoder, passed to :meth:`init_conv`.

    Shapes:
        - **input:** node features :math:`(C, F_{in})`, edge indices :math:`(2, E)`
          with ``edge_index[0]`` the source :math:`j` and ``edge_index[1]`` the target
          :math:`i` of message :math:`j \to i`, optional edge weights :math:`(E,)`
        - **output:** label embeddings :math:`(C, F_{out})`
    """

    #: the layer takes ``edge_weight=`` (a scalar per edge)
    supports_edge_weight: ClassVar[bool] = False
    #: the layer takes ``edge_attr=`` (an ``(E, 1)`` edge feature)
    supports_edge_attr: ClassVar[bool] = False
    #: activation used when ``act`` is not given
    default_act: ClassVar[str] = "relu"
    default_act_kwargs: ClassVar[dict[str, Any]] = {}
    #: registry name, set by :func:`gcnretrieval.encoders.register_encoder`
    encoder_name: ClassVar[str | None] = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int = 5,
        hidden_channels: int | None = None,
        act: str | Callable | None = None,
        act_kwargs: dict[str, Any] | None = None,
        dropout: float = 0.0,
        jk: str | None = "cat",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self._check_options(kwargs)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.num_layers = check_positive_int("num_layers", num_layers)
        hidden = out_channels if hidden_channels is None else hidden_channels
        self.hidden_channels = check_positive_int("hidden_channels", hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgument("dropout", f"must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        if isinstance(jk, str) and jk.lower() == "none":
            jk = None
        if jk not in ("cat", None):
            raise InvalidArgument("jk", f"must be 'cat' or 'none', got {jk!r}")
        self.jk_mode = jk

        if act is None:
            act = self.default_act
            act_kwargs = dict(self.default_act_kwargs) if act_kwargs is None else act_kwargs
        self.act = resolve_activation(act, act_kwargs)
        self.conv_kwargs = dict(kwargs)

        self.convs = nn.ModuleList()
        for layer in range(self.num_layers):
            last = layer == self.num_layers - 1
            c_in = self.in_channels if layer == 0 else self.hidden_channels
            c_out = self.out_channels if (last and jk is None) else self.hidden_channels
            self.convs.append(self.init_conv(c_in, c_out, **kwargs))

        self.lin: Linear | None = None
        if jk == "cat":
            self.lin = Linear(
                self.num_layers * self.hidden_channels,
                self.out_channels,
                weight_initializer="glorot",
                bias_initializer="zeros",
            )
        self._warned_edge_weight = False

    # ------------------------------------------------------------------ subclass API
    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
        """Build one layer mapping ``in_channels`` to ``out_channels`` features."""
        raise NotImplementedError

    @classmethod
    def option_types(cls) -> dict[str, tuple[Any, Any]]:
        """``{option: (type, default)}`` for every option this encoder accepts (``in_channels``
        and ``out_channels`` aside): the shared options, then those of :meth:`init_conv`."""
        out = {}
        for function, kinds in ((LabelEncoder.__init__, None), (cls.init_conv, (inspect.Parameter.KEYWORD_ONLY,))):
            hints = typing.get_type_hints(function)
            for p in inspect.signature(function).parameters.values():
                shared = kinds is None and p.name in SHARED_OPTIONS
                if shared or (kinds is not None and p.kind in kinds):
                    out[p.name] = (hints.get(p.name, Any), p.default)
        return out

    @classmethod
    def options(cls) -> list[str]:
        """Sorted names of every option this encoder accepts."""
        return sorted(cls.option_types())

    @classmethod
    def _accepts_any_option(cls) -> bool:
        params = inspect.signature(cls.init_conv).parameters.values()
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)

    def _check_options(self, kwargs: dict[str, Any]) -> None:
        if self._accepts_any_option():
            return
        unknown = sorted(set(kwargs) - set(self.options()))
        if unknown:
            name = self.encoder_name or type(self).__name__
            listed = ", ".join(repr(u) for u in unknown)
            noun = "option" if len(unknown) == 1 else "options"
            raise ConfigError(
                f"unknown {noun} {listed} for encoder '{name}'; "
                f"accepted options: {', '.join(self.options())}"
            )

    # ------------------------------------------------------------------ module API
    def reset_parameters(self) -> None:
        """Re-initialise every layer and the head."""
        for conv in self.convs:
            conv.reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()

    def _call_conv(
        self, conv: nn.Module, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None
    ) -> Tensor:
        if edge_weight is None:
            return conv(x, edge_index)
        if self.supports_edge_weight:
            return conv(x, edge_index, edge_weight=edge_weight)
        if self.supports_edge_attr:
            return conv(x, edge_index, edge_attr=edge_weight.view(-1, 1))
        if not self._warned_edge_weight:
            self._warned_edge_weight = True
            name = self.encoder_name or type(self).__name__
            warnings.warn(
                f"encoder '{name}' ignores edge weights: its layer takes neither "
                f"edge_weight nor edge_attr, so only the graph structure is used",
                UserWarning,
                stacklevel=3,
            )
        return conv(x, edge_index)

    @staticmethod
    def _check_edge_weight(edge_index: Tensor, edge_weight: Tensor | None) -> None:
        if edge_weight is not None and edge_weight.numel() != edge_index.size(1):
            raise GraphError(
                f"edge_weight has {edge_weight.numel()} entries but edge_index has "
                f"{edge_index.size(1)} edges: pass one weight per edge"
            )

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Encode the label graph; returns one ``out_channels`` row per label."""
        self._check_edge_weight(edge_index, edge_weight)
        return self._stack(x, lambda conv, h: self._call_conv(conv, h, edge_index, edge_weight))

    def _stack(self, x: Tensor, layer_call: Callable[[nn.Module, Tensor], Tensor]) -> Tensor:
        """The layers (each applied by ``layer_call(conv, h)``), activations, dropout and the JK head."""
        outputs: list[Tensor] = []
        for layer, conv in enumerate(self.convs):
            x = layer_call(conv, x)
            if layer == self.num_layers - 1 and self.jk_mode is None:
                break
            x = self.act(x)
            if self.dropout > 0.0:
                x = F.dropout(x, p=self.dropout, training=self.training)
            outputs.append(x)
        if self.lin is not None:
            x = self.lin(torch.cat(outputs, dim=-1))
        return x

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"num_layers={self.num_layers})"
        )
