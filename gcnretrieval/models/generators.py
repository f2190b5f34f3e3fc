r"""Cross-modal generators: common-space embedding -> the other modality's features."""
from __future__ import annotations

from torch import Tensor, nn


class Generator(nn.Module):
    r"""Maps a common-space embedding to the *other* modality's input feature space

    .. math::
        G(\mathbf{h}) = \sigma\Big(\mathbf{W}_2\,
        \sigma\big(\mathbf{W}_1\,\mathrm{BN}(\mathbf{h}) + \mathbf{b}_1\big) + \mathbf{b}_2\Big)

    The method uses two of them (their outputs are only seen by the discriminators; there
    is no reconstruction loss):

    - :math:`G_{vt}` (image embedding -> text features): ``hidden_channels=512``,
      :math:`\sigma` = LeakyReLU(0.2) (``negative_slope=0.2``);
    - :math:`G_{tv}` (text embedding -> image features): ``hidden_channels=2048``,
      :math:`\sigma` = ReLU (``negative_slope=0.0``).

    Args:
        in_channels (int): common dimension :math:`d`.
        hidden_channels (int): width of the hidden layer.
        out_channels (int): target modality's feature size.
        negative_slope (float, optional): slope of :math:`\sigma` for negative inputs;
            ``0.0`` gives ReLU, anything else LeakyReLU. (default: :obj:`0.0`)
        batch_norm (bool, optional): normalise the input with BatchNorm1d (``False``: the
            identity, as in DAGNN's code). (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(n, d)`
        - **output:** :math:`(n, \text{out\_channels})`
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 negative_slope: float = 0.0, batch_norm: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.negative_slope = float(negative_slope)
        self.norm = nn.BatchNorm1d(in_channels) if batch_norm else nn.Identity()
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, out_channels)
        if self.negative_slope == 0.0:
            self.act: nn.Module = nn.ReLU()
        else:
            self.act = nn.LeakyReLU(self.negative_slope)

    def reset_parameters(self) -> None:
        if isinstance(self.norm, nn.BatchNorm1d):
            self.norm.reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.lin1(self.norm(x)))
        return self.act(self.lin2(h))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, negative_slope={self.negative_slope:g})")
