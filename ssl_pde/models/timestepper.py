"""Neural time-steppers for 1D PDEs with FiLM conditioning (none / a parameter / an SSL representation).

``CNNStepper`` follows the LPSDA residual CNN: a pointwise lift of the ``history`` input frames, 8 residual
circular Conv1d layers (kernels 3, 5, 5, 7, 7, 9, 9, 15) with ELU, and a pointwise projection to the
``future`` next frames. Conditioning enters every residual layer through the same FiLM path: a vector c
(B, cond_dim) -> per-layer (scale, shift), ``h <- h * (1 + scale) + shift``. With ``cond_dim = 0`` the
model is unconditioned.
"""

from __future__ import annotations

import torch
from torch import nn

Tensor = torch.Tensor
KERNELS = (3, 5, 5, 7, 7, 9, 9, 15)


class CNNStepper(nn.Module):
    """Maps u (B, history, X) and a condition c (B, cond_dim) to the next frames (B, future, X).

    Args:
        history, future: input and output window lengths (frames).
        width: channels of the residual layers.
        cond_dim: size of the conditioning vector (0: no conditioning).
    """

    def __init__(self, history: int = 20, future: int = 20, width: int = 64, cond_dim: int = 0) -> None:
        super().__init__()
        self.lift = nn.Conv1d(history + 1, width, 1)  # + the grid coordinate x / L
        self.convs = nn.ModuleList(nn.Conv1d(width, width, k, padding=k // 2, padding_mode="circular") for k in KERNELS)
        self.out = nn.Sequential(nn.Conv1d(width, width, 1), nn.ELU(), nn.Conv1d(width, future, 1))
        self.act = nn.ELU()
        # Built last and zero-initialised: with the same seed, every variant starts as the same function.
        self.film = nn.Linear(cond_dim, 2 * width * len(KERNELS)) if cond_dim > 0 else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, u: Tensor, cond: Tensor | None = None) -> Tensor:
        b, _, nx = u.shape
        grid = torch.linspace(0, 1, nx, device=u.device, dtype=u.dtype).expand(b, 1, nx)
        h = self.act(self.lift(torch.cat([u, grid], dim=1)))
        films = None
        if self.film is not None:
            films = self.film(cond).view(b, len(KERNELS), 2, -1, 1)
        for i, conv in enumerate(self.convs):
            z = conv(h)
            if films is not None:
                z = z * (1 + films[:, i, 0]) + films[:, i, 1]
            h = self.act(h + z)
        return u[:, -1:] + self.out(h)  # predict the change from the last input frame
