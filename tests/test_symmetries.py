"""Every registered Lie point symmetry maps solutions to solutions; wrong generators are caught.

Check used throughout: the PDE residual of the transformed solution ``u~(t', x')`` (obtained by
inverting the coordinate map), with derivatives by autograd through (a) exact solutions written in
torch or (b) the project's generated solutions represented by exact trigonometric interpolation in
periodic x and 8th-degree polynomial interpolation in t. The residual is relative to the size of the
PDE's terms, so a non-symmetry gives O(eps) and a symmetry gives the interpolation floor.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_pde.pdes import PDES
from ssl_pde.pdes.residual import SpectralInterpolant, relative_residual, transformed
from ssl_pde.pdes.symmetry import burgers_scaling, heat_projective
from tests.conftest import tiny_generator
from tests.exact import NU, burgers_exact, heat_exact, kdv_soliton

torch.manual_seed(0)
EPS = {
    "time_translation": 0.3,
    "space_translation": 0.7,
    "galilean_boost": 0.4,
    "scaling": 0.2,
    "projective": 0.3,
    "amplitude_scaling": 0.5,
}


def generated(pde: str):
    """A solution made by the project's generator (41 frames on [0, t_end]) as a continuous function."""
    gen = tiny_generator(pde, nt=41, nt_total=41, **({"t_end": 2.0} if pde == "ks" else {}))
    params = gen.sample_params(np.array([7]))
    sol, _ = gen.solve(params)
    _, dt = gen.stored_times(params)
    t = torch.arange(41, dtype=torch.float64) * float(dt[0])
    extra = {"nu": torch.tensor(float(params["nu"][0]), dtype=torch.float64)} if "nu" in params else {}
    return SpectralInterpolant(t, sol.u[0], float(params["domain_length"][0])), float(t[-1]), extra


def cases():
    """(pde, solution, t-range, params) for exact and generated solutions."""
    nu = {"nu": torch.tensor(NU, dtype=torch.float64)}
    out = [
        ("heat", heat_exact, (0.2, 1.0), nu),
        ("burgers", burgers_exact, (0.2, 1.0), nu),
        ("kdv", kdv_soliton, (0.2, 1.0), {}),
    ]
    for pde in ("burgers", "kdv", "ks"):
        fn, t_end, extra = generated(pde)
        out.append((pde, fn, (0.3 * t_end, 0.6 * t_end), extra))
    return out


CASES = cases()
IDS = [f"{c[0]}-{'exact' if not isinstance(c[1], SpectralInterpolant) else 'generated'}" for c in CASES]


def points(trange: tuple[float, float], n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    t = trange[0] + (trange[1] - trange[0]) * torch.rand(n, generator=g, dtype=torch.float64)
    x = 6.0 * torch.rand(n, generator=g, dtype=torch.float64)
    return t, x


def residual(pde, u, t, x, params) -> float:
    spec = PDES[pde]
    return relative_residual(spec.residual_terms, u, t, x, spec.max_x_derivative, **params)


def residual_after(pde, u, g, eps, trange, params) -> float:
    """Residual of the transformed solution at the images of interior points."""
    t, x = points(trange)
    tp, xp, _ = g(eps, t, x, torch.zeros_like(t), **params)
    return residual(pde, transformed(u, g, eps, **params), tp, xp, params)


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("pde", "u", "trange", "params"), CASES, ids=IDS)
def test_every_symmetry_maps_solutions_to_solutions(pde, u, trange, params):
    """Transformed solutions satisfy the PDE as well as the original does (within 10x of its floor)."""
    base = residual(pde, u, *points(trange), params)
    assert base < 1e-5, f"the untransformed solution itself has residual {base:.2e}"
    for name, sym in PDES[pde].symmetries.items():
        r = residual_after(pde, u, sym, EPS[name], trange, params)
        assert r < max(10 * base, 1e-9), f"{pde}.{name}: residual {r:.2e} vs floor {base:.2e}"


def _ref_quadratic_boost(eps, t, x, u, **_):
    """SSLForPDEs' 'quadratic boost' without pressure: x + eps t^2 with the linear boost's u + eps."""
    return t, x + eps * t * t, u + eps


def _quadratic_boost(eps, t, x, u, **_):
    """x + eps t^2, u + 2 eps t: a symmetry of NS only with the pressure shift; none for Burgers/KdV/KS."""
    return t, x + eps * t * t, u + 2 * eps * t


def _wrong_sign_boost(eps, t, x, u, **_):
    return t, x + eps * t, u - eps


def _heat_projective_floordiv(eps, t, x, u, nu, **_):
    """The README's potential-form projective map with ``x * x // (...)`` (floor division)."""
    d = 1 - 4 * nu * eps * t
    return t / d, x / d, u * torch.sqrt(d) * torch.exp(-torch.div(eps * x * x, d, rounding_mode="floor"))


def _kdv_scaling_with_burgers_exponents(eps, t, x, u, **_):
    return burgers_scaling(eps, t, x, u)


NEGATIVE = [
    ("burgers", _ref_quadratic_boost),
    ("burgers", _quadratic_boost),
    ("burgers", _wrong_sign_boost),
    ("kdv", _ref_quadratic_boost),
    ("kdv", _kdv_scaling_with_burgers_exponents),
    ("ks", _quadratic_boost),
    ("ks", burgers_scaling),
    ("heat", _heat_projective_floordiv),
]


@pytest.mark.parametrize(("pde", "bad"), NEGATIVE, ids=[f"{p}-{b.__name__.strip('_')}" for p, b in NEGATIVE])
def test_negative_controls_are_caught(pde, bad):
    """The same residual check flags the reference code's wrong generators and other non-symmetries."""
    pde_cases = [c for c in CASES if c[0] == pde]
    for _, u, trange, params in pde_cases:
        base = residual(pde, u, *points(trange), params)
        r = residual_after(pde, u, bad, 0.3, trange, params)
        assert r > max(1e3 * base, 1e-3), f"{pde}: {bad.__name__} residual {r:.2e} not above floor {base:.2e}"


def test_floor_division_control_differs_from_correct_map():
    """Sanity of the control itself: with the correct division the heat projective map passes."""
    nu = {"nu": torch.tensor(NU, dtype=torch.float64)}
    assert residual_after("heat", heat_exact, heat_projective, 0.3, (0.2, 1.0), nu) < 1e-9


@pytest.mark.parametrize("pde", sorted(p for p in PDES if PDES[p].n_spatial_dims == 1))
def test_identity_and_inverse(pde):
    """g(0) is the identity and g(-eps) inverts g(eps), for every generator, elementwise on batches."""
    g = torch.Generator().manual_seed(3)
    t = torch.rand(4, 5, 6, generator=g, dtype=torch.float64)
    x = 5 * torch.rand(4, 5, 6, generator=g, dtype=torch.float64)
    u = torch.randn(4, 5, 6, generator=g, dtype=torch.float64) + 3
    eps = 0.2 * torch.randn(4, 1, 1, generator=g, dtype=torch.float64)  # one value per sample
    params = {"nu": torch.tensor(NU, dtype=torch.float64)}
    for name, sym in PDES[pde].symmetries.items():
        for a, b in zip(sym(0.0, t, x, u, **params), (t, x, u), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        back = sym(-eps, *sym(eps, t, x, u, **params), **params)
        for a, b in zip(back, (t, x, u), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
