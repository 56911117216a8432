"""Joint-embedding objectives as small config-facing callables: ``objective(z1, z2) -> dict of terms``.

Each wraps one pure loss function with its coefficients (the ``objective`` sub-config of ``configs/method/``),
always gathering across ranks (``gather=True``), and carries the ``name`` that error messages use. The returned
dict holds ``loss`` (the total, differentiated) and the objective's other terms, logged as ``train/<term>``.

- :class:`VICReg`: :func:`~ssl_pde.losses.vicreg.vicreg_loss` (terms ``invariance``, ``variance``, ``covariance``);
- :class:`BarlowTwins`: :func:`~ssl_pde.losses.barlow.barlow_twins_loss` (``on_diag``, ``off_diag``);
- :class:`SimCLR`: :func:`~ssl_pde.losses.infonce.info_nce_loss` (``pos_sim``, ``neg_sim``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch

from ssl_pde.core.errors import UserError
from ssl_pde.losses.barlow import barlow_twins_loss
from ssl_pde.losses.infonce import info_nce_loss
from ssl_pde.losses.vicreg import vicreg_loss

Tensor = torch.Tensor


class Objective(Protocol):
    """A joint-embedding objective: two (N, D) embedding batches -> dict of () terms, ``loss`` the total."""

    name: ClassVar[str]

    def __call__(self, z1: Tensor, z2: Tensor) -> dict[str, Tensor]: ...


@dataclass(frozen=True)
class VICReg:
    """VICReg (Bardes et al. 2022): ``sim * inv + std * (v(z1) + v(z2)) / 2 + cov * (c(z1) + c(z2))``."""

    sim_coeff: float = 25.0
    std_coeff: float = 25.0
    cov_coeff: float = 1.0
    eps: float = 1e-4
    name: ClassVar[str] = "VICReg"

    def __call__(self, z1: Tensor, z2: Tensor) -> dict[str, Tensor]:
        """(N, D), (N, D) -> ``loss``, ``invariance``, ``variance``, ``covariance`` over the global batch."""
        return vicreg_loss(z1, z2, self.sim_coeff, self.std_coeff, self.cov_coeff, eps=self.eps, gather=True)


@dataclass(frozen=True)
class BarlowTwins:
    """Barlow Twins (Zbontar et al. 2021): ``sum_i (1 - C_ii)^2 + off_diag_coeff * sum_{i != j} C_ij^2``."""

    off_diag_coeff: float = 5e-3
    eps: float = 1e-5
    name: ClassVar[str] = "Barlow Twins"

    def __post_init__(self) -> None:
        if not (self.off_diag_coeff >= 0 and self.eps >= 0):
            raise UserError(
                f"Barlow Twins: off_diag_coeff and eps (method.objective.*) must be >= 0, got {self.off_diag_coeff} "
                f"and {self.eps}"
            )

    def __call__(self, z1: Tensor, z2: Tensor) -> dict[str, Tensor]:
        """(N, D), (N, D) -> ``loss``, ``on_diag``, ``off_diag`` over the global batch."""
        return barlow_twins_loss(z1, z2, self.off_diag_coeff, eps=self.eps, gather=True)


@dataclass(frozen=True)
class SimCLR:
    """SimCLR's NT-Xent / InfoNCE (Chen et al. 2020) at ``temperature``, negatives from the global batch."""

    temperature: float = 0.1
    name: ClassVar[str] = "SimCLR"

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise UserError(f"SimCLR: temperature (method.objective.temperature) must be > 0, got {self.temperature}")

    def __call__(self, z1: Tensor, z2: Tensor) -> dict[str, Tensor]:
        """(N, D), (N, D) -> ``loss``, ``pos_sim``, ``neg_sim`` over the global batch."""
        return info_nce_loss(z1, z2, self.temperature, gather=True)
