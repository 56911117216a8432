"""Batched Fourier pseudo-spectral machinery for periodic 1D PDEs, in torch (CPU or GPU, float64).

The PDEs handled here have the form ``u_t = L u - (u^2 / 2)_x`` with a linear operator L diagonal in
Fourier space (``lin`` below) and the conservative Burgers nonlinearity. Time stepping is the fourth
order exponential time-differencing Runge-Kutta scheme ETDRK4 (Cox & Matthews 2002) with the
contour-integral evaluation of its coefficients (Kassam & Trefethen 2005). Every trajectory of a batch
has its own domain length, operator and time step, so all coefficients are per trajectory: (B, K).
The quadratic term is dealiased by the 2/3 rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def wavenumbers(nx: int, length: Tensor) -> Tensor:
    """Angular wavenumbers of the real FFT.

    Args:
        nx: number of grid points (even).
        length: (B,) float64 domain lengths.

    Returns:
        k: (B, nx // 2 + 1) float64, ``k[b, n] = 2 pi n / length[b]``.
    """
    n = torch.arange(nx // 2 + 1, dtype=torch.float64, device=length.device)
    return 2.0 * math.pi * n[None, :] / length[:, None]


def dealias_mask(nx: int, device: torch.device | str = "cpu") -> Tensor:
    """2/3-rule mask over rfft modes: (nx // 2 + 1,) float64, 1 for ``n <= nx // 3`` else 0 (Nyquist off)."""
    n = torch.arange(nx // 2 + 1, device=device)
    return (n <= nx // 3).to(torch.float64)


def etdrk4_coefficients(lin: Tensor, h: Tensor, n_contour: int = 64) -> tuple[Tensor, ...]:
    """ETDRK4 coefficients by the Kassam-Trefethen contour integral.

    Args:
        lin: (B, K) complex128 linear operator in Fourier space.
        h: (B, 1) float64 time step per trajectory.
        n_contour: points on the unit circle around each ``h * lin``.

    Returns:
        ``(E, E2, Q, f1, f2, f3)``, each (B, K) complex128. The means over the contour are kept
        complex: the operators of dispersive equations (KdV) are not real.
    """
    hl = h.to(torch.complex128) * lin
    j = torch.arange(1, n_contour + 1, dtype=torch.float64, device=lin.device)
    roots = torch.exp(2j * math.pi * (j - 0.5) / n_contour).to(torch.complex128)  # full circle: lin is complex
    lr = hl[..., None] + roots  # (B, K, M)
    elr = torch.exp(lr)
    hc = h.to(torch.complex128)
    q = hc * torch.mean((torch.exp(lr / 2) - 1) / lr, dim=-1)
    lr3 = lr**3
    f1 = hc * torch.mean((-4 - lr + elr * (4 - 3 * lr + lr**2)) / lr3, dim=-1)
    f2 = hc * torch.mean((2 + lr + elr * (lr - 2)) / lr3, dim=-1)
    f3 = hc * torch.mean((-4 - 3 * lr - lr**2 + elr * (4 - lr)) / lr3, dim=-1)
    return torch.exp(hl), torch.exp(hl / 2), q, f1, f2, f3


@dataclass
class SpectralSolution:
    """Output of :func:`solve_periodic_1d`.

    Attributes:
        u: (B, nt, nx) float64 solution on the solver grid at the stored times.
        spectral_tail: (B,) float64, max over stored frames of the energy fraction (mean mode
            excluded) held by the top third of the retained (2/3-rule) modes.
        max_abs: (B,) float64 max |u| over stored frames.
        finite: (B,) bool, every stored value finite.
    """

    u: Tensor
    spectral_tail: Tensor
    max_abs: Tensor
    finite: Tensor


def spectral_tail(v: Tensor, nx: int) -> Tensor:
    """Energy fraction in the top third of retained modes.

    Args:
        v: (..., nx // 2 + 1) complex rfft coefficients.

    Returns:
        (...) float64: ``sum_{2kc/3 < n <= kc} |v_n|^2 / sum_{1 <= n <= kc} |v_n|^2`` with ``kc = nx // 3``.
    """
    kc = nx // 3
    e = (v.abs() ** 2)[..., 1 : kc + 1]
    lo = (2 * kc) // 3
    total = e.sum(-1).clamp_min(1e-300)
    return e[..., lo:].sum(-1) / total


def solve_periodic_1d(
    u0: Tensor,
    length: Tensor,
    lin_fn: Callable[[Tensor], Tensor],
    dt_store: Tensor,
    n_warmup: int,
    n_store: int,
    substeps: int,
    progress: Callable[[int], None] | None = None,
) -> SpectralSolution:
    """Integrate ``u_t = L u - (u^2/2)_x`` on periodic domains with ETDRK4, batched.

    The stored times of trajectory b are ``(n_warmup + k) * dt_store[b]`` for ``k < n_store``; the
    internal step is ``dt_store[b] / substeps``.

    Args:
        u0: (B, nx) float64 initial condition on the solver grid.
        length: (B,) float64 domain lengths.
        lin_fn: maps wavenumbers (B, K) float64 to the linear operator (B, K) complex128.
        dt_store: (B,) float64 interval between stored frames.
        n_warmup: stored-interval count integrated before the first stored frame.
        n_store: number of stored frames.
        substeps: internal steps per stored interval.
        progress: called with the number of internal steps just done.

    Returns:
        The :class:`SpectralSolution` on the solver grid.
    """
    bsz, nx = u0.shape
    k = wavenumbers(nx, length)
    lin = lin_fn(k).to(torch.complex128)
    h = (dt_store / substeps)[:, None]
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(lin, h)
    mask = dealias_mask(nx, u0.device)
    g = -0.5j * k * mask  # (B, K): u u_x = (u^2/2)_x, dealiased

    def nonlin(v: Tensor) -> Tensor:
        w = torch.fft.irfft(v, n=nx)
        return g * torch.fft.rfft(w * w)

    # Premultiplied step constants (the update is then a few fused complex FMAs per stage).
    f2x2 = 2 * f2
    v = torch.fft.rfft(u0) * mask
    out = torch.empty(bsz, n_store, nx, dtype=torch.float64, device=u0.device)
    tail = torch.zeros(bsz, dtype=torch.float64, device=u0.device)

    def step(v: Tensor) -> Tensor:
        nv = nonlin(v)
        e2v = e2 * v
        a = e2v + q * nv
        na = nonlin(a)
        b = e2v + q * na
        nb = nonlin(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlin(c)
        return e * v + f1 * nv + f2x2 * (na + nb) + f3 * nc

    for _ in range(n_warmup):
        for _ in range(substeps):
            v = step(v)
        if progress is not None:
            progress(substeps)
    for i in range(n_store):
        if i > 0:
            for _ in range(substeps):
                v = step(v)
            if progress is not None:
                progress(substeps)
        out[:, i] = torch.fft.irfft(v, n=nx)
        tail = torch.maximum(tail, torch.nan_to_num(spectral_tail(v, nx), nan=1.0))
    finite = torch.isfinite(out).flatten(1).all(dim=1)
    max_abs = torch.nan_to_num(out.abs(), nan=float("inf")).flatten(1).amax(dim=1)
    return SpectralSolution(u=out, spectral_tail=tail, max_abs=max_abs, finite=finite)
