r"""Modality discriminators behind a gradient reversal layer."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from gcnretrieval.checks import check_choice
from gcnretrieval.models.grl import GradientReversal

DiscriminatorAct = Literal["relu", "identity"]


def tapered_widths(in_channels: int, divisors: Sequence[int] = (4, 16)) -> tuple[int, ...]:
    r"""Hidden widths :math:`\lfloor d / k \rfloor` (at least 1) for each divisor :math:`k`.

    The text discriminator :math:`D_t` uses ``tapered_widths(d_t)`` = :math:`(d_t/4, d_t/16)`;
    the floor of 1 keeps tiny test feature sizes valid.
    """
    return tuple(max(1, int(in_channels) // int(k)) for k in divisors)


class Discriminator(nn.Module):
    r"""Modality classifier on one modality's feature space

    .. math::
        D(\mathbf{x}) = \mathbf{W}_K\,\mathrm{ReLU}\big(\cdots
        \mathrm{ReLU}(\mathbf{W}_1\,\mathrm{BN}(R(\mathbf{x})) + \mathbf{b}_1)\cdots\big) + \mathbf{b}_K

    with :math:`R` the :class:`~gcnretrieval.models.grl.GradientReversal` layer. The
    outputs are two logits. In the adversarial loss
    (:func:`~gcnretrieval.losses.adversarial_loss`, eq. 25) class 1 is the image side and
    class 0 the text side, for both discriminators, so what class 1 means depends on
    which one it is:

    - :math:`D_v` (image feature space): class 1 = real image features
      :math:`\mathbf{x}^v`, class 0 = generated ones :math:`G_{tv}(\mathbf{t})`;
    - :math:`D_t` (text feature space): class 1 = generated text features
      :math:`G_{vt}(\mathbf{v})`, class 0 = real ones :math:`\mathbf{x}^t`.

    Because of :math:`R`, the discriminator's own parameters descend the adversarial
    loss while the generators and projectors upstream of it ascend it, in the same
    backward pass.

    The method's two discriminators:

    - :math:`D_v`: ``in_channels = d_v``, ``hidden_channels = (1024, 256)``;
    - :math:`D_t`: ``in_channels = d_t``, ``hidden_channels = tapered_widths(d_t)``
      :math:`= (d_t/4, d_t/16)`.

    Args:
        in_channels (int): feature size of the modality.
        hidden_channels (Sequence[int]): widths of the hidden Linear -> ReLU layers.
        num_classes (int, optional): number of output logits. (default: :obj:`2`)
        grl_coefficient (float, optional): gradient reversal coefficient.
            (default: :obj:`1.0`)
        batch_norm (bool, optional): the BatchNorm1d after :math:`R` (``False``: the
            identity, as in DAGNN's code). (default: :obj:`True`)
        act (str, optional): the hidden activation, ``"relu"`` or ``"identity"`` (DAGNN's
            code: a stack of linear layers). (default: :obj:`"relu"`)

    Shapes:
        - **input:** :math:`(n, \text{in\_channels})`
        - **output:** :math:`(n, \text{num\_classes})`
    """

    def __init__(self, in_channels: int, hidden_channels: Sequence[int], num_classes: int = 2,
                 grl_coefficient: float = 1.0, batch_norm: bool = True,
                 act: DiscriminatorAct = "relu") -> None:
        super().__init__()
        if len(hidden_channels) == 0:
            raise ValueError("hidden_channels must list at least one width")
        self.in_channels = in_channels
        self.hidden_channels = tuple(int(w) for w in hidden_channels)
        self.num_classes = num_classes
        self.grl = GradientReversal(grl_coefficient)
        self.norm = nn.BatchNorm1d(in_channels) if batch_norm else nn.Identity()
        widths = (in_channels, *self.hidden_channels, num_classes)
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = nn.ReLU() if check_choice("act", act, DiscriminatorAct) == "relu" else nn.Identity()

    def reset_parameters(self) -> None:
        if isinstance(self.norm, nn.BatchNorm1d):
            self.norm.reset_parameters()
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.grl(x))
        last = len(self.lins) - 1
        for i, lin in enumerate(self.lins):
            h = lin(h)
            if i < last:
                h = self.act(h)
        return h

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.num_classes}, "
                f"hidden_channels={list(self.hidden_channels)})")
