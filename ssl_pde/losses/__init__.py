"""Self-supervised losses: VICReg (``vicreg``), Barlow Twins (``barlow``), SimCLR's NT-Xent / InfoNCE (``infonce``),
and the config-facing objectives wrapping them (``objectives``)."""

from ssl_pde.losses.barlow import barlow_twins_loss, cross_correlation, standardize
from ssl_pde.losses.infonce import info_nce_loss
from ssl_pde.losses.objectives import BarlowTwins, Objective, SimCLR, VICReg
from ssl_pde.losses.vicreg import covariance_loss, gather_with_grad, invariance_loss, variance_loss, vicreg_loss

__all__ = [
    "BarlowTwins",
    "Objective",
    "SimCLR",
    "VICReg",
    "barlow_twins_loss",
    "covariance_loss",
    "cross_correlation",
    "gather_with_grad",
    "info_nce_loss",
    "invariance_loss",
    "standardize",
    "variance_loss",
    "vicreg_loss",
]
