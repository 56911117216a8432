"""2D Navier-Stokes: the nine registered flows map exact solutions to solutions; the reference code's
wrong generators and other plausible mistakes are caught by the same residual check.

Independent check: the NS residual (both momentum equations and continuity, autograd derivatives) of
the transformed exact solution ``psi = sin(a x) sin(b y) e^{-nu (a^2 + b^2) t}``, moving with a uniform
flow (U, V), whose pressure ``e^{-2 nu (a^2+b^2) t} (b^2 cos 2a x + a^2 cos 2b y) / 4`` was derived with sympy.
"""

from __future__ import annotations

import pytest
import torch

from ssl_pde.pdes import PDES
from ssl_pde.pdes.ns2d import ns_residual, ns_rotation

NU, A, B, U0, V0 = 0.05, 1.0, 2.0, 0.3, -0.2
SYMS = PDES["ns2d"].symmetries
EPS = {
    "time_translation": 0.4,
    "x_translation": 0.7,
    "y_translation": -0.5,
    "scaling": 0.2,
    "rotation": 0.5,
    "boost_x": 0.3,
    "boost_y": -0.4,
    "quadratic_boost_x": 0.2,
    "quadratic_boost_y": -0.3,
}


def exact(t, x, y):
    """(u, v, p) of the exact solution (a decaying cellular flow carried by a uniform stream)."""
    xs, ys = x - U0 * t, y - V0 * t
    f = torch.exp(-NU * (A**2 + B**2) * t)
    u = U0 + B * torch.sin(A * xs) * torch.cos(B * ys) * f
    v = V0 - A * torch.cos(A * xs) * torch.sin(B * ys) * f
    p = f**2 * (B**2 * torch.cos(2 * A * xs) + A**2 * torch.cos(2 * B * ys)) / 4
    return u, v, p


def transformed(sol, g, eps):
    def fn(tp, xp, yp):
        z = torch.zeros_like(tp)
        t, x, y, *_ = g(-eps, tp, xp, yp, z, z, z)
        return g(eps, t, x, y, *sol(t, x, y))[3:]

    return fn


def points(n=80):
    g = torch.Generator().manual_seed(0)
    r = torch.rand(3, n, generator=g, dtype=torch.float64)
    return 0.2 + r[0], 4 * r[1], 4 * r[2]


def residual_after(g, eps) -> float:
    t, x, y = points()
    z = torch.zeros_like(t)
    tp, xp, yp, *_ = g(eps, t, x, y, z, z, z)
    return ns_residual(transformed(exact, g, eps), tp, xp, yp, NU)


def test_exact_solution_is_a_solution():
    assert ns_residual(exact, *points(), NU) < 1e-14


@pytest.mark.parametrize("name", list(SYMS))
def test_symmetry_maps_solutions_to_solutions(name):
    assert residual_after(SYMS[name], EPS[name]) < 1e-13


def ref_group_9_no_pressure(eps, t, x, y, u, v, p, **_):
    """SSLForPDEs group_9 without pressure: a quadratic shift with a constant velocity shift."""
    return t, x, y + eps * t * t, u, v + eps, p


def ref_group_9_with_pressure(eps, t, x, y, u, v, p, **_):
    """SSLForPDEs group_9 with pressure: a linear shift with a linear-in-time velocity shift."""
    return t, x, y + eps * t, u, v + 2 * eps * t, p - eps


def quadratic_boost_without_pressure(eps, t, x, y, u, v, p, **_):
    return t, x + eps * t * t, y, u + 2 * eps * t, v, p


def rotation_of_positions_only(eps, t, x, y, u, v, p, **_):
    c, s = torch.cos(torch.tensor(eps)), torch.sin(torch.tensor(eps))
    return t, c * x - s * y, s * x + c * y, u, v, p


@pytest.mark.parametrize(
    "bad",
    [ref_group_9_no_pressure, ref_group_9_with_pressure, quadratic_boost_without_pressure, rotation_of_positions_only],
)
def test_negative_controls_are_caught(bad):
    assert residual_after(bad, 0.3) > 1e-2


def test_generators_are_distinct_maps():
    """No two registered generators act alike (the reference's group_8 silently duplicated group_6)."""
    g = torch.Generator().manual_seed(1)
    args = [torch.rand(50, generator=g, dtype=torch.float64) + 0.5 for _ in range(6)]
    images = {n: torch.stack(s(0.3, *args)) for n, s in SYMS.items()}
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.allclose(images[a], images[b]), (a, b)


def test_identity_inverse_and_rotation_group_law():
    g = torch.Generator().manual_seed(2)
    args = [torch.randn(4, 7, generator=g, dtype=torch.float64) for _ in range(6)]
    eps = 0.3 * torch.randn(4, 1, generator=g, dtype=torch.float64)
    for name, s in SYMS.items():
        for a, b in zip(s(0.0, *args), args, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        for a, b in zip(s(-eps, *s(eps, *args)), args, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    two = ns_rotation(0.2, *ns_rotation(0.3, *args))
    for a, b in zip(two, ns_rotation(0.5, *args), strict=True):
        torch.testing.assert_close(a, b)
