"""System identification from the equation: what the data permit when the PDE is known.

A learned regressor of Burgers' viscosity competes with a classical estimate that needs no labels: on a clean
solution of ``u_t + u u_x = nu u_xx`` the residual ``r = u_t + u u_x`` is ``nu`` times ``u_xx`` at every grid
point, so the least-squares ratio ``sum(r u_xx) / sum(u_xx^2)`` recovers ``nu`` up to the error of the
numerical derivatives. It is a reference, not a method of the protocol: it knows the equation and reads
clean, well-resolved data; it tells how far the learned methods sit from the information in their inputs.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def _dx_periodic(u: Tensor, length: Tensor, order: int) -> Tensor:
    """``order``-th x-derivative of (N, T, X) periodic ``u`` on domains of ``length`` (N,), spectrally."""
    nx = u.shape[-1]
    k = torch.fft.rfftfreq(nx, d=1.0 / nx).to(u)[None, None, :] * (2 * math.pi / length[:, None, None])
    return torch.fft.irfft((1j * k) ** order * torch.fft.rfft(u, dim=-1), n=nx, dim=-1)


def burgers_viscosity_lsq(u: Tensor, t: Tensor, x: Tensor, length: Tensor | None = None) -> Tensor:
    """Least-squares viscosity of each trajectory from the Burgers residual.

    Args:
        u: (N, T, X) solution on a uniform grid in x and (possibly) non-uniform frames in t.
        t: (N, T) frame times.
        x: (N, X) grid coordinates (uniform spacing).
        length: (N,) periods of the domains: x-derivatives spectral over the whole periodic line; None for a
            window of the domain (e.g. an evaluation crop): second-order central differences, interior points.

    Returns:
        (N,) float64 estimates ``sum(r u_xx) / sum(u_xx^2)`` over interior frames (central differences in t)
        and the points where the x-derivatives are defined.
    """
    u, t, x = u.double(), t.double(), x.double()
    if length is not None:
        ux, uxx = _dx_periodic(u, length.double(), 1), _dx_periodic(u, length.double(), 2)
        sx = slice(None)
    else:
        h = (x[:, 1] - x[:, 0])[:, None, None]
        ux = torch.zeros_like(u)
        uxx = torch.zeros_like(u)
        ux[..., 1:-1] = (u[..., 2:] - u[..., :-2]) / (2 * h)
        uxx[..., 1:-1] = (u[..., 2:] - 2 * u[..., 1:-1] + u[..., :-2]) / h**2
        sx = slice(1, -1)
    # non-uniform central difference in t (exact for quadratics)
    h1 = (t[:, 1:-1] - t[:, :-2])[:, :, None]
    h2 = (t[:, 2:] - t[:, 1:-1])[:, :, None]
    ut = (h1**2 * u[:, 2:] - h2**2 * u[:, :-2] + (h2**2 - h1**2) * u[:, 1:-1]) / (h1 * h2 * (h1 + h2))
    r = (ut + (u * ux)[:, 1:-1])[..., sx]
    b = uxx[:, 1:-1][..., sx]
    return (r * b).sum((1, 2)) / (b * b).sum((1, 2)).clamp_min(1e-300)
