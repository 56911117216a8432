"""PDE residuals of (transformed) solutions: the check that a symmetry really maps solutions to solutions.

A solution is any differentiable callable ``u(t, x)`` on tensors of equal shape: an exact solution
written in torch, or :class:`SpectralInterpolant` of stored frames (exact trigonometric interpolation
in periodic x, local polynomial interpolation of every Fourier coefficient in t). A symmetry turns it
into ``u~(t', x') = u'(g_eps)`` (:func:`transformed`), evaluated by inverting the coordinate map. Its
derivatives come from autograd, so the residual can be evaluated at any points, including where the
transformed solution is no longer periodic (projective maps, the heat Galilean boost).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ssl_pde.pdes.symmetry import SymmetryFn

Tensor = torch.Tensor
SolutionFn = Callable[[Tensor, Tensor], Tensor]


class SpectralInterpolant:
    """Continuous representation of a periodic solution stored on a regular grid.

    Args:
        t: (T,) float64 increasing frame times (uniform spacing).
        u: (T, X) float64 values on ``x_j = j L / X``.
        length: period L.
        degree: polynomial degree of the interpolation in time (``degree + 1`` nearest frames).
    """

    def __init__(self, t: Tensor, u: Tensor, length: float, degree: int = 8) -> None:
        self.t = t.to(torch.float64)
        self.dt = float(t[1] - t[0])
        self.length = float(length)
        self.degree = degree
        nx = u.shape[-1]
        c = torch.fft.rfft(u.to(torch.float64), dim=-1) / nx  # (T, K)
        w = torch.full((c.shape[-1],), 2.0, dtype=torch.float64)
        w[0] = 1.0
        if nx % 2 == 0:
            w[-1] = 1.0
        self.coef = c * w
        self.k = 2 * math.pi * torch.arange(c.shape[-1], dtype=torch.float64) / self.length

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        """u at points (t, x) of equal shape (M,); differentiable in both."""
        n = self.degree + 1
        s = (t.detach() - self.t[0]) / self.dt
        start = torch.clamp(torch.floor(s).long() - (n // 2 - 1), 0, len(self.t) - n)  # (M,)
        idx = start[:, None] + torch.arange(n)  # (M, n)
        nodes = self.t[idx]  # (M, n)
        # Lagrange weights l_j(t) = prod_{m != j} (t - t_m) / (t_j - t_m), differentiable in t.
        diff = t[:, None] - nodes  # (M, n)
        weights = []
        for j in range(n):
            others = [m for m in range(n) if m != j]
            num = torch.prod(diff[:, others], dim=1)
            den = torch.prod(nodes[:, j : j + 1] - nodes[:, others], dim=1)
            weights.append(num / den)
        lw = torch.stack(weights, dim=1)  # (M, n)
        c = (lw[:, :, None] * self.coef[idx]).sum(1)  # (M, K) complex
        phase = torch.exp(1j * self.k[None, :] * x[:, None])
        return (c * phase).real.sum(-1)


def transformed(u: SolutionFn, g: SymmetryFn, eps: float, **params) -> SolutionFn:
    """The solution ``u~`` whose graph is the image of the graph of ``u`` under ``g(eps)``.

    ``u~(t', x')``: invert the coordinate map with ``g(-eps)`` (coordinates do not depend on u), read
    ``u`` there, and map the value with ``g(eps)``.
    """

    def fn(tp: Tensor, xp: Tensor) -> Tensor:
        t, x, _ = g(-eps, tp, xp, torch.zeros_like(tp), **params)
        _, _, up = g(eps, t, x, u(t, x), **params)
        return up

    return fn


def derivatives(u: SolutionFn, t: Tensor, x: Tensor, max_x: int) -> dict[str, Tensor]:
    """``u``, ``u_t`` and ``u_x ... d^{max_x} u / dx^{max_x}`` at points (t, x) by autograd.

    Returns:
        dict with keys "u", "t", "x1", ..., f"x{max_x}", each (M,) float64 (detached).
    """
    t = t.detach().clone().requires_grad_(True)
    x = x.detach().clone().requires_grad_(True)
    val = u(t, x)
    (ut,) = torch.autograd.grad(val.sum(), t, create_graph=False, retain_graph=True)
    out = {"u": val.detach(), "t": ut.detach()}
    cur = val
    for m in range(1, max_x + 1):
        (cur,) = torch.autograd.grad(cur.sum(), x, create_graph=m < max_x, retain_graph=True)
        out[f"x{m}"] = cur.detach()
    return out


def relative_residual(
    terms: Callable[..., list[Tensor]], u: SolutionFn, t: Tensor, x: Tensor, max_x: int, **params
) -> float:
    """``||sum of terms|| / ||sum of |terms|||`` over the points: 0 for a solution, O(1) for a non-solution.

    Args:
        terms: maps the derivative dict (and params) to the PDE's terms, whose sum vanishes on solutions.
        u: the solution to test.
        t, x: (M,) evaluation points.
        max_x: highest x-derivative the PDE needs.
    """
    d = derivatives(u, t, x, max_x)
    ts = terms(d, **params)
    total = sum(ts)
    scale = sum(term.abs() for term in ts)
    return float(total.norm() / scale.norm())
