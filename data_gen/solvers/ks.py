"""Kuramoto-Sivashinsky ``u_t + u u_x + u_xx + u_xxxx = 0`` on a periodic domain."""

from __future__ import annotations

import torch

from data_gen.solvers.base import PeriodicGenerator1D


class KSGenerator(PeriodicGenerator1D):
    """KS trajectories. Linear symbol: ``k^2 - k^4``. Arguments: :class:`PeriodicGenerator1D`."""

    pde = "ks"

    def linear_operator(self, k: torch.Tensor, extra: dict[str, torch.Tensor]) -> torch.Tensor:
        return (k**2 - k**4).to(torch.complex128)
