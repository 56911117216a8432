"""2D incompressible Navier-Stokes ``u_t + (u . grad) u = -grad p + nu lap u, div u = 0`` (rho = 1).

The nine point-symmetry flows used by the method, in their correct form (the reference code's
"quadratic boost" in x repeated the linear boost, its y version was not a symmetry in either code path,
and its pressure-gradient path had wrong factors). Signature ``g(eps, t, x, y, u, v, p)`` returning the
transformed ``(t, x, y, u, v, p)``, elementwise on broadcastable tensors. A passive scalar (the smoke)
is invariant under all nine. Coordinates never depend on the fields.

On the project's NS data (a buoyancy-driven plume in a closed box with no-slip walls) only the time
translation is exact: translations, boosts and the quadratic boosts move the walls, rotation turns
gravity, and scaling maps the buoyancy b -> e^{-3 eps} b. Each entry's ``boundary`` says so.
"""

from __future__ import annotations

import torch

from ssl_pde.pdes.symmetry import Symmetry

Tensor = torch.Tensor


def _exp(eps, like: Tensor) -> Tensor:
    return torch.exp(torch.as_tensor(eps, dtype=like.dtype, device=like.device))


def ns_time_translation(eps, t, x, y, u, v, p, **_):
    """(t + eps, ...)."""
    return t + eps, x, y, u, v, p


def ns_x_translation(eps, t, x, y, u, v, p, **_):
    """(x + eps)."""
    return t, x + eps, y, u, v, p


def ns_y_translation(eps, t, x, y, u, v, p, **_):
    """(y + eps)."""
    return t, x, y + eps, u, v, p


def ns_scaling(eps, t, x, y, u, v, p, **_):
    """(e^{2 eps} t, e^{eps} x, e^{eps} y, e^{-eps} u, e^{-eps} v, e^{-2 eps} p)."""
    e = _exp(eps, t)
    return t * e**2, x * e, y * e, u / e, v / e, p / e**2


def ns_rotation(eps, t, x, y, u, v, p, **_):
    """Rotation by angle eps of positions and velocities about the origin; p unchanged."""
    c = torch.cos(torch.as_tensor(eps, dtype=t.dtype, device=t.device))
    s = torch.sin(torch.as_tensor(eps, dtype=t.dtype, device=t.device))
    return t, c * x - s * y, s * x + c * y, c * u - s * v, s * u + c * v, p


def ns_boost_x(eps, t, x, y, u, v, p, **_):
    """Galilean boost (x + eps t, u + eps)."""
    return t, x + eps * t, y, u + eps, v, p


def ns_boost_y(eps, t, x, y, u, v, p, **_):
    """Galilean boost (y + eps t, v + eps)."""
    return t, x, y + eps * t, u, v + eps, p


def ns_quadratic_boost_x(eps, t, x, y, u, v, p, **_):
    """Accelerating frame (x + eps t^2, u + 2 eps t, p - 2 eps x - eps^2 t^2).

    The flow of ``t^2 d_x + 2t d_u - 2x d_p``; the ``- eps^2 t^2`` (a pressure gauge, itself a symmetry)
    makes it a one-parameter group, so that ``g(-eps)`` inverts ``g(eps)``."""
    return t, x + eps * t * t, y, u + 2 * eps * t, v, p - 2 * eps * x - eps * eps * t * t


def ns_quadratic_boost_y(eps, t, x, y, u, v, p, **_):
    """Accelerating frame (y + eps t^2, v + 2 eps t, p - 2 eps y - eps^2 t^2)."""
    return t, x, y + eps * t * t, u, v + 2 * eps * t, p - 2 * eps * y - eps * eps * t * t


_BOX = "approximate for the closed box: moves the walls"
NS2D_SYMMETRIES: dict[str, Symmetry] = {
    "time_translation": Symmetry(ns_time_translation, "d_t", "buoyancy unchanged", "exact for the closed box"),
    "x_translation": Symmetry(ns_x_translation, "d_x", "buoyancy unchanged", _BOX),
    "y_translation": Symmetry(ns_y_translation, "d_y", "buoyancy unchanged", _BOX),
    "scaling": Symmetry(
        ns_scaling,
        "2t d_t + x d_x + y d_y - u d_u - v d_v - 2p d_p",
        "buoyancy b -> e^{-3 eps} b",
        "approximate for the closed box: rescales it",
    ),
    "rotation": Symmetry(
        ns_rotation,
        "x d_y - y d_x + u d_v - v d_u",
        "buoyancy unchanged in size, gravity turns",
        "approximate for the closed box: turns the walls and gravity",
    ),
    "boost_x": Symmetry(ns_boost_x, "t d_x + d_u", "buoyancy unchanged", _BOX),
    "boost_y": Symmetry(ns_boost_y, "t d_y + d_v", "buoyancy unchanged", _BOX),
    "quadratic_boost_x": Symmetry(ns_quadratic_boost_x, "t^2 d_x + 2t d_u - 2x d_p", "buoyancy unchanged", _BOX),
    "quadratic_boost_y": Symmetry(ns_quadratic_boost_y, "t^2 d_y + 2t d_v - 2y d_p", "buoyancy unchanged", _BOX),
}


def ns_residual(sol, t: Tensor, x: Tensor, y: Tensor, nu: float) -> float:
    """Relative residual of NS for a differentiable solution ``sol(t, x, y) -> (u, v, p)``.

    Returns the largest, over the x-momentum, y-momentum and continuity equations, of
    ``||sum of terms|| / ||sum of |terms|||`` at the points (M,).
    """
    t = t.detach().clone().requires_grad_(True)
    x = x.detach().clone().requires_grad_(True)
    y = y.detach().clone().requires_grad_(True)
    u, v, p = sol(t, x, y)

    def grad(f: Tensor, z: Tensor, create: bool = True) -> Tensor:
        return torch.autograd.grad(f.sum(), z, create_graph=create, retain_graph=True)[0]

    out = []
    for f, dp in ((u, grad(p, x, False)), (v, grad(p, y, False))):
        fx, fy = grad(f, x), grad(f, y)
        lap = grad(fx, x, False) + grad(fy, y, False)
        out.append([grad(f, t, False), u.detach() * fx.detach(), v.detach() * fy.detach(), dp, -nu * lap])
    out.append([grad(u, x, False), grad(v, y, False)])
    worst = 0.0
    for terms in out:
        total = sum(terms)
        scale = sum(term.abs() for term in terms)
        worst = max(worst, float(total.norm() / scale.norm()))
    return worst
