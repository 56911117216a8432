"""Exact solutions written in torch, the independent references of the symmetry tests (no side effects at import).

Each is checked against its PDE's residual in ``tests/test_symmetries.py``.
"""

from __future__ import annotations

import math

import torch

NU = 0.1  # viscosity / diffusivity of the heat and Burgers solutions


def heat_exact(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """phi = 2 + sum_k a_k exp(-nu k^2 t) cos(k x + p_k): an exact, positive heat solution."""
    out = 2.0 + 0 * x
    for k, a, p in ((1, 0.6, 0.3), (2, 0.3, 1.1), (3, 0.2, 2.0)):
        out = out + a * torch.exp(-NU * k**2 * t) * torch.cos(k * x + p)
    return out


def burgers_exact(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cole-Hopf: u = -2 nu phi_x / phi solves u_t + u u_x = nu u_xx exactly."""
    phi_x = 0 * x
    for k, a, p in ((1, 0.6, 0.3), (2, 0.3, 1.1), (3, 0.2, 2.0)):
        phi_x = phi_x - a * k * torch.exp(-NU * k**2 * t) * torch.sin(k * x + p)
    return -2 * NU * phi_x / heat_exact(t, x)


def kdv_soliton(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """u = 3c sech^2(sqrt(c)/2 (x - c t - x0)) solves u_t + u u_x + u_xxx = 0 exactly."""
    c = 1.2
    return 3 * c / torch.cosh(math.sqrt(c) / 2 * (x - c * t - 1.0)) ** 2
