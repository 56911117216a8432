"""Viscous Burgers ``u_t + u u_x = nu u_xx`` on a periodic domain, nu log-uniform per trajectory."""

from __future__ import annotations

import math

import numpy as np
import torch

from data_gen.solvers.base import ConfigError, PeriodicGenerator1D


class BurgersGenerator(PeriodicGenerator1D):
    """Burgers trajectories; nu ~ log-uniform[nu_min, nu_max], drawn first from each seed.

    Linear symbol ``-nu k^2``. Other arguments: :class:`PeriodicGenerator1D`.
    """

    pde = "burgers"

    def __init__(self, nu_min: float, nu_max: float, **kwargs) -> None:
        for name, v in (("nu_min", nu_min), ("nu_max", nu_max)):
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"viscosity {name} must be positive, got {v!r}")
        if nu_max < nu_min:
            raise ConfigError(f"nu_max={nu_max} < nu_min={nu_min}")
        super().__init__(**kwargs)
        self.nu_min, self.nu_max = float(nu_min), float(nu_max)
        self._init_kwargs.update(nu_min=nu_min, nu_max=nu_max)

    def sample_extra(self, rng: np.random.Generator) -> dict[str, float]:
        return {"nu": float(np.exp(rng.uniform(np.log(self.nu_min), np.log(self.nu_max))))}

    def linear_operator(self, k: torch.Tensor, extra: dict[str, torch.Tensor]) -> torch.Tensor:
        return (-extra["nu"][:, None] * k**2).to(torch.complex128)

    def sampling_doc(self) -> dict[str, str]:
        return {"nu": f"loguniform[{self.nu_min}, {self.nu_max}]", **super().sampling_doc()}
