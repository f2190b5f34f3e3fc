r"""Linear CCA on running statistics of two views, kept as buffers like BatchNorm's."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from gcnretrieval.checks import check_interval, check_positive, check_positive_int
from gcnretrieval.errors import InvalidArgument


class RunningCCA(nn.Module):
    r"""Linear CCA of two views from running means and covariances.

    Each call of :meth:`update` (the model calls it in training-mode forward passes) folds one
    batch into exponential moving averages, as :class:`torch.nn.BatchNorm1d` does with momentum
    :math:`\mu`:

    .. math::
        \mathbf{m}_v \leftarrow (1-\mu)\,\mathbf{m}_v + \mu\,\overline{\mathbf{h}}_v,\qquad
        \Sigma_{uv} \leftarrow (1-\mu)\,\Sigma_{uv} + \mu\,\tfrac{1}{n-1}\bar{H}_u^\top \bar{H}_v
        \quad (u, v \in \{1, 2\}).

    :meth:`project` maps both views onto the top :math:`k` canonical directions of those
    statistics (with the ridge :math:`r` on both diagonals):

    .. math::
        U S V^\top = \mathrm{svd}\big((\Sigma_{11} + rI)^{-1/2} \Sigma_{12} (\Sigma_{22} + rI)^{-1/2}\big),
        \qquad
        \mathbf{z}_v = (\mathbf{h}_v - \mathbf{m}_v)^\top A_v,\quad
        A_1 = (\Sigma_{11} + rI)^{-1/2} U_{:k},\; A_2 = (\Sigma_{22} + rI)^{-1/2} V_{:k}.

    The inverse square roots come from ``eigh`` with the eigenvalues clamped at ``1e-12``; the
    projection is computed in float64 without gradient, and returned in the inputs' dtype.
    Before the first update the statistics are zero means and identity covariances.

    Args:
        in_channels1 (int): width :math:`o_1` of the first view.
        in_channels2 (int): width :math:`o_2` of the second view.
        out_channels (int): number :math:`k \le \min(o_1, o_2)` of canonical directions kept.
        ridge (float): :math:`r > 0`. (default: ``1e-4``)
        momentum (float): :math:`\mu \in (0, 1]`. (default: ``0.1``)

    Shapes:
        - **input:** :math:`(n, o_1)` and :math:`(n, o_2)`
        - **output:** :math:`(n, k)` each
    """

    def __init__(self, in_channels1: int, in_channels2: int, out_channels: int, ridge: float = 1e-4,
                 momentum: float = 0.1) -> None:
        super().__init__()
        self.in_channels1 = check_positive_int("in_channels1", in_channels1)
        self.in_channels2 = check_positive_int("in_channels2", in_channels2)
        self.out_channels = check_positive_int("out_channels", out_channels)
        if out_channels > min(in_channels1, in_channels2):
            raise InvalidArgument("out_channels", f"must be at most min(o1, o2) = {min(in_channels1, in_channels2)} "
                                  f"(the number of canonical directions), got {out_channels}")
        self.ridge = check_positive("ridge", ridge)
        self.momentum = check_interval("momentum", check_positive("momentum", momentum))
        self.register_buffer("mean1", torch.zeros(in_channels1))
        self.register_buffer("mean2", torch.zeros(in_channels2))
        self.register_buffer("cov11", torch.eye(in_channels1))
        self.register_buffer("cov22", torch.eye(in_channels2))
        self.register_buffer("cov12", torch.zeros(in_channels1, in_channels2))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def reset_parameters(self) -> None:
        """Back to zero means and identity covariances."""
        self.mean1.zero_()
        self.mean2.zero_()
        self.cov11.copy_(torch.eye(self.in_channels1))
        self.cov22.copy_(torch.eye(self.in_channels2))
        self.cov12.zero_()
        self.num_batches_tracked.zero_()

    @torch.no_grad()
    def update(self, h1: Tensor, h2: Tensor) -> None:
        """Fold one batch of ``n >= 2`` paired rows into the running statistics."""
        n = h1.size(0)
        x1, x2 = h1.detach().to(self.mean1.dtype), h2.detach().to(self.mean2.dtype)
        m1, m2 = x1.mean(dim=0), x2.mean(dim=0)
        x1, x2 = x1 - m1, x2 - m2
        mu = self.momentum
        for buffer, value in ((self.mean1, m1), (self.mean2, m2), (self.cov11, x1.T @ x1 / (n - 1)),
                              (self.cov22, x2.T @ x2 / (n - 1)), (self.cov12, x1.T @ x2 / (n - 1))):
            buffer.mul_(1 - mu).add_(value, alpha=mu)
        self.num_batches_tracked.add_(1)

    @staticmethod
    def _inverse_sqrt(cov: Tensor) -> Tensor:
        values, vectors = torch.linalg.eigh(cov)
        return (vectors * values.clamp_min(1e-12).rsqrt()) @ vectors.T

    @torch.no_grad()
    def directions(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(A_1, A_2, correlations)``: the :math:`(o_v, k)` projections and the top :math:`k`
        canonical correlations of the running statistics, in float64."""
        cov11, cov22, cov12 = self.cov11.double(), self.cov22.double(), self.cov12.double()
        w1 = self._inverse_sqrt(cov11 + self.ridge * torch.eye(self.in_channels1, dtype=cov11.dtype,
                                                                device=cov11.device))
        w2 = self._inverse_sqrt(cov22 + self.ridge * torch.eye(self.in_channels2, dtype=cov22.dtype,
                                                                device=cov22.device))
        u, s, vh = torch.linalg.svd(w1 @ cov12 @ w2, full_matrices=False)
        k = self.out_channels
        return w1 @ u[:, :k], w2 @ vh[:k].T, s[:k]

    @torch.no_grad()
    def project(self, h1: Tensor | None = None, h2: Tensor | None = None) -> tuple[Tensor | None, Tensor | None]:
        """Project either view (or both) onto the top :math:`k` canonical directions."""
        a1, a2, _ = self.directions()
        z1 = None if h1 is None else ((h1.double() - self.mean1.double()) @ a1).to(h1.dtype)
        z2 = None if h2 is None else ((h2.double() - self.mean2.double()) @ a2).to(h2.dtype)
        return z1, z2

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels1}, {self.in_channels2}, {self.out_channels}, "
                f"ridge={self.ridge}, momentum={self.momentum})")
