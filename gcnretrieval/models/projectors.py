r"""Modality projectors: input features -> the common space."""
from __future__ import annotations

from torch import Tensor, nn


class Projector(nn.Module):
    r"""Projects one modality's features into the common space

    .. math::
        \mathbf{h}_0 = \mathrm{ReLU}\big(\mathbf{W}_0\,\mathrm{BN}(\mathbf{x}) + \mathbf{b}_0\big),
        \qquad
        \mathbf{h}_\ell = \mathrm{ReLU}(\mathbf{W}_\ell \mathbf{h}_{\ell-1} + \mathbf{b}_\ell),
        \quad \ell = 1, \ldots, L-1

    The first layer is the method's projector, BatchNorm1d(d_in) -> Linear(d_in, d) -> ReLU
    (with ``batch_norm=False``, :math:`\mathrm{BN}` is the identity: Linear -> ReLU, as in
    ALGCN and DSCMR). Each *extra* layer (``num_layers > 1``) is Linear(d, d) -> ReLU on the common
    width, with no further normalisation; the output is :math:`\mathbf{h}_{L-1}`.

    Args:
        in_channels (int): input feature size :math:`d_{in}`.
        out_channels (int): common dimension :math:`d`.
        num_layers (int, optional): number of Linear -> ReLU layers :math:`L \geq 1`.
            (default: :obj:`1`)
        batch_norm (bool, optional): normalise the input with BatchNorm1d.
            (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(n, d_{in})`
        - **output:** :math:`(n, d)`, non-negative
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, batch_norm: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.batch_norm = bool(batch_norm)
        self.norm = nn.BatchNorm1d(in_channels) if self.batch_norm else nn.Identity()
        self.lins = nn.ModuleList([nn.Linear(in_channels, out_channels)])
        for _ in range(num_layers - 1):
            self.lins.append(nn.Linear(out_channels, out_channels))
        self.act = nn.ReLU()

    def reset_parameters(self) -> None:
        if self.batch_norm:
            self.norm.reset_parameters()
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        for lin in self.lins:
            h = self.act(lin(h))
        return h

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"num_layers={self.num_layers}"
                + ("" if self.batch_norm else ", batch_norm=False") + ")")
