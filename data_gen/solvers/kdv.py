"""Korteweg-de Vries ``u_t + u u_x + u_xxx = 0`` on a periodic domain (LPSDA sign convention)."""

from __future__ import annotations

import torch

from data_gen.solvers.base import PeriodicGenerator1D


class KdVGenerator(PeriodicGenerator1D):
    """KdV trajectories. Linear symbol: ``-(ik)^3 = i k^3``. Arguments: :class:`PeriodicGenerator1D`."""

    pde = "kdv"

    def linear_operator(self, k: torch.Tensor, extra: dict[str, torch.Tensor]) -> torch.Tensor:
        return 1j * k.to(torch.complex128) ** 3
