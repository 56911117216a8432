"""Lie point symmetries as pure functions, and the registry entry that documents each one.

A symmetry of a 1D PDE is ``g(eps, t, x, u, **params) -> (t', x', u')``: the finite one-parameter
flow of one generator, elementwise on broadcastable tensors (``eps`` broadcasts too: one value per
sample, shape (B, 1, 1) against fields (B, T, X)). Each maps the graph of a solution to the graph of
another solution: ``u~(t', x') = u'``. Coordinates never depend on ``u`` for the groups registered
here, so ``g(-eps)`` applied to coordinates inverts the coordinate map, which the residual check uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
SymmetryFn = Callable[..., tuple[Tensor, Tensor, Tensor]]


@dataclass(frozen=True)
class Symmetry:
    """One Lie point symmetry generator with its finite action.

    Attributes:
        fn: ``g(eps, t, x, u, **params) -> (t', x', u')``.
        generator: the infinitesimal generator, for documentation (e.g. ``"t d_x + d_u"``).
        params_effect: what it does to the stored parameters (e.g. "nu unchanged; L -> e^eps L").
        boundary: which boundary conditions it respects ("periodic", "whole line only", ...).
        needs: PDE parameters the map itself uses (``("nu",)`` for the heat Galilean boost).
    """

    fn: SymmetryFn
    generator: str
    params_effect: str
    boundary: str
    needs: tuple[str, ...] = ()

    def __call__(self, eps: Tensor | float, *coords_and_fields: Tensor, **params: Tensor) -> tuple[Tensor, ...]:
        """``g(eps, *coords, *fields, **params)``: the transformed coordinates and fields, same order."""
        return self.fn(eps, *coords_and_fields, **params)


def _exp(eps: Tensor | float, like: Tensor) -> Tensor:
    return torch.exp(torch.as_tensor(eps, dtype=like.dtype, device=like.device))


# ---------------------------------------------------------------------------- shared one-parameter flows
def time_translation(eps, t, x, u, **_):
    """(t + eps, x, u)."""
    return t + eps, x, u


def space_translation(eps, t, x, u, **_):
    """(t, x + eps, u)."""
    return t, x + eps, u


def galilean_boost(eps, t, x, u, **_):
    """(t, x + eps t, u + eps): Galilean boost of u_t + u u_x + ... = 0 (Burgers, KdV, KS)."""
    return t, x + eps * t, u + eps


# ---------------------------------------------------------------------------- Burgers (velocity form)
def burgers_scaling(eps, t, x, u, **_):
    """(e^{2 eps} t, e^{eps} x, e^{-eps} u)."""
    e = _exp(eps, t)
    return t * e**2, x * e, u / e


def burgers_projective(eps, t, x, u, **_):
    """(t / (1 - eps t), x / (1 - eps t), u (1 - eps t) + eps x); defined where 1 - eps t > 0."""
    d = 1 - eps * t
    return t / d, x / d, u * d + eps * x


# ---------------------------------------------------------------------------- KdV
def kdv_scaling(eps, t, x, u, **_):
    """(e^{3 eps} t, e^{eps} x, e^{-2 eps} u)."""
    e = _exp(eps, t)
    return t * e**3, x * e, u / e**2


# ---------------------------------------------------------------------------- heat phi_t = nu phi_xx
def heat_amplitude_scaling(eps, t, x, u, **_):
    """(t, x, e^{eps} phi): linearity."""
    return t, x, u * _exp(eps, u)


def heat_scaling(eps, t, x, u, **_):
    """(e^{2 eps} t, e^{eps} x, phi)."""
    e = _exp(eps, t)
    return t * e**2, x * e, u


def heat_galilean(eps, t, x, u, nu, **_):
    """(t, x + 2 nu eps t, phi exp(-eps x - eps^2 nu t))."""
    return t, x + 2 * nu * eps * t, u * torch.exp(-eps * x - eps**2 * nu * t)


def heat_projective(eps, t, x, u, nu, **_):
    """(t / d, x / d, phi sqrt(d) exp(-eps x^2 / d)) with d = 1 - 4 nu eps t > 0."""
    d = 1 - 4 * nu * eps * t
    return t / d, x / d, u * torch.sqrt(d) * torch.exp(-eps * x * x / d)


_T = "respects any spatial boundary condition (shifts the time origin)"
_X = "periodic: maps a periodic solution to one of the same period"

BURGERS_SYMMETRIES: dict[str, Symmetry] = {
    "time_translation": Symmetry(time_translation, "d_t", "nu unchanged", _T),
    "space_translation": Symmetry(space_translation, "d_x", "nu unchanged", _X),
    "galilean_boost": Symmetry(galilean_boost, "t d_x + d_u", "nu unchanged; the mean of u shifts by eps", _X),
    "scaling": Symmetry(
        burgers_scaling,
        "2t d_t + x d_x - u d_u",
        "nu unchanged; L -> e^eps L, t_end -> e^{2 eps} t_end",
        "periodic with the rescaled period e^eps L",
    ),
    "projective": Symmetry(
        burgers_projective,
        "t^2 d_t + t x d_x + (x - t u) d_u",
        "nu unchanged",
        "whole line only: adds eps x and stretches x by 1 / (1 - eps t), so a periodic solution is not "
        "mapped to a periodic one",
    ),
}

KDV_SYMMETRIES: dict[str, Symmetry] = {
    "time_translation": Symmetry(time_translation, "d_t", "parameters unchanged", _T),
    "space_translation": Symmetry(space_translation, "d_x", "parameters unchanged", _X),
    "galilean_boost": Symmetry(galilean_boost, "t d_x + d_u", "the mean of u shifts by eps", _X),
    "scaling": Symmetry(
        kdv_scaling,
        "3t d_t + x d_x - 2u d_u",
        "L -> e^eps L, t_end -> e^{3 eps} t_end, amplitudes x e^{-2 eps}",
        "periodic with the rescaled period e^eps L",
    ),
}

KS_SYMMETRIES: dict[str, Symmetry] = {
    "time_translation": Symmetry(time_translation, "d_t", "parameters unchanged", _T),
    "space_translation": Symmetry(space_translation, "d_x", "parameters unchanged", _X),
    "galilean_boost": Symmetry(galilean_boost, "t d_x + d_u", "the mean of u shifts by eps", _X),
}

HEAT_SYMMETRIES: dict[str, Symmetry] = {
    "time_translation": Symmetry(time_translation, "d_t", "nu unchanged", _T),
    "space_translation": Symmetry(space_translation, "d_x", "nu unchanged", _X),
    "amplitude_scaling": Symmetry(heat_amplitude_scaling, "phi d_phi", "nu unchanged", _X),
    "scaling": Symmetry(heat_scaling, "2t d_t + x d_x", "nu unchanged; L -> e^eps L", "periodic with period e^eps L"),
    "galilean_boost": Symmetry(
        heat_galilean, "2 nu t d_x - x phi d_phi", "nu unchanged", "whole line only (multiplies by e^{-eps x})", ("nu",)
    ),
    "projective": Symmetry(
        heat_projective,
        "4 nu t^2 d_t + 4 nu t x d_x - (x^2 + 2 nu t) phi d_phi",
        "nu unchanged",
        "whole line only",
        ("nu",),
    ),
}
