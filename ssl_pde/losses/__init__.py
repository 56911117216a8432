"""Self-supervised losses: VICReg (``vicreg``)."""

from ssl_pde.losses.vicreg import covariance_loss, gather_with_grad, invariance_loss, variance_loss, vicreg_loss

__all__ = ["covariance_loss", "gather_with_grad", "invariance_loss", "variance_loss", "vicreg_loss"]
