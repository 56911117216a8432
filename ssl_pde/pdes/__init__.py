"""Registry of PDE specifications: the single source of truth for coordinate, field and parameter names.

``PDES[name]`` gives a :class:`PDESpec`. Solvers (``data_gen``), the HDF5 schema, data loaders and the
symmetry module all look names up here, so a field or parameter is spelled in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ssl_pde.pdes.ns2d import NS2D_SYMMETRIES
from ssl_pde.pdes.symmetry import BURGERS_SYMMETRIES, HEAT_SYMMETRIES, KDV_SYMMETRIES, KS_SYMMETRIES, Symmetry

Tensor = torch.Tensor


@dataclass(frozen=True)
class PDESpec:
    """Static description of one PDE family.

    Attributes:
        name: registry key, also the ``pde`` attribute of every shard.
        equation: the equation in plain text, for reports.
        coord_names: independent variables in storage order after the channel axis, e.g. ``("t", "x")``.
        field_names: stored channels of ``/u``, in order (length C).
        param_names: every per-trajectory sampled quantity stored under ``/params/``.
        boundary: boundary condition of the spatial domain ("periodic", "closed_box").
        params_doc: one line per parameter, stored as the ``description`` attribute.
        symmetries: ordered mapping from a readable name to a Lie point symmetry (``symmetry.py``).
        residual_terms: maps autograd derivatives ``{"u", "t", "x1", ...}`` (and PDE parameters) to the
            PDE's terms, whose sum vanishes on solutions (``residual.py``).
        max_x_derivative: highest x-derivative in the PDE.
        dynamics_params: the per-trajectory scalar parameters that change the dynamics or the frame spacing
            of a stored trajectory (the "true parameters" a time-stepper may be conditioned on).
    """

    name: str
    equation: str
    coord_names: tuple[str, ...]
    field_names: tuple[str, ...]
    param_names: tuple[str, ...]
    boundary: str
    params_doc: dict[str, str] = field(default_factory=dict)
    symmetries: dict[str, Symmetry] = field(default_factory=dict)
    residual_terms: Callable[..., list[Tensor]] | None = None
    max_x_derivative: int = 2
    dynamics_params: tuple[str, ...] = ()

    @property
    def n_spatial_dims(self) -> int:
        """Number of spatial dimensions (coordinates other than ``t``)."""
        return len(self.coord_names) - 1


_SINES_DOC = {
    "domain_length": "length L of the periodic domain [0, L)",
    "t_end": "final time T of the simulation (the last stored frame)",
    "ic_amplitude": "amplitudes A_j of u0(x) = sum_j A_j sin(2 pi l_j x / L + phi_j), shape (N, J)",
    "ic_phase": "phases phi_j of the initial condition, shape (N, J)",
    "ic_wavenumber": "integer wavenumbers l_j of the initial condition, shape (N, J)",
}


def _burgers_terms(d: dict[str, Tensor], nu: Tensor, **_) -> list[Tensor]:
    return [d["t"], d["u"] * d["x1"], -nu * d["x2"]]


def _kdv_terms(d: dict[str, Tensor], **_) -> list[Tensor]:
    return [d["t"], d["u"] * d["x1"], d["x3"]]


def _ks_terms(d: dict[str, Tensor], **_) -> list[Tensor]:
    return [d["t"], d["u"] * d["x1"], d["x2"], d["x4"]]


def _heat_terms(d: dict[str, Tensor], nu: Tensor, **_) -> list[Tensor]:
    return [d["t"], -nu * d["x2"]]


PDES: dict[str, PDESpec] = {
    "burgers": PDESpec(
        name="burgers",
        equation="u_t + u u_x = nu u_xx, x in [0, L) periodic",
        coord_names=("t", "x"),
        field_names=("u",),
        param_names=("nu", "domain_length", "t_end", "ic_amplitude", "ic_phase", "ic_wavenumber"),
        boundary="periodic",
        params_doc={"nu": "kinematic viscosity nu", **_SINES_DOC},
        symmetries=BURGERS_SYMMETRIES,
        residual_terms=_burgers_terms,
        max_x_derivative=2,
        dynamics_params=("nu", "domain_length", "t_end"),
    ),
    "kdv": PDESpec(
        name="kdv",
        equation="u_t + u u_x + u_xxx = 0, x in [0, L) periodic",
        coord_names=("t", "x"),
        field_names=("u",),
        param_names=("domain_length", "t_end", "ic_amplitude", "ic_phase", "ic_wavenumber"),
        boundary="periodic",
        params_doc=dict(_SINES_DOC),
        symmetries=KDV_SYMMETRIES,
        residual_terms=_kdv_terms,
        max_x_derivative=3,
        dynamics_params=("domain_length", "t_end"),
    ),
    "ks": PDESpec(
        name="ks",
        equation="u_t + u u_x + u_xx + u_xxxx = 0, x in [0, L) periodic",
        coord_names=("t", "x"),
        field_names=("u",),
        param_names=("domain_length", "t_end", "ic_amplitude", "ic_phase", "ic_wavenumber"),
        boundary="periodic",
        params_doc=dict(_SINES_DOC),
        symmetries=KS_SYMMETRIES,
        residual_terms=_ks_terms,
        max_x_derivative=4,
        dynamics_params=("domain_length", "t_end"),
    ),
    # The heat equation is the linear face of Burgers (Cole-Hopf: u = -2 nu phi_x / phi). It has no
    # generator of its own; its symmetries are verified on exact solutions.
    "heat": PDESpec(
        name="heat",
        equation="phi_t = nu phi_xx",
        coord_names=("t", "x"),
        field_names=("phi",),
        param_names=("nu",),
        boundary="periodic",
        params_doc={"nu": "diffusivity nu"},
        symmetries=HEAT_SYMMETRIES,
        residual_terms=_heat_terms,
        max_x_derivative=2,
    ),
    # 2D incompressible Navier-Stokes with a buoyancy-driven smoke plume in a closed box. Its generator
    # and data arrive with the NS work; the symmetries act on (t, x, y, u, v, p) (ssl_pde/pdes/ns2d.py)
    # and are verified with ns2d.ns_residual on exact solutions.
    "ns2d": PDESpec(
        name="ns2d",
        equation="u_t + (u . grad) u = -grad p + nu lap u + b s y_hat, div u = 0, s_t + u . grad s = 0",
        coord_names=("t", "x", "y"),
        field_names=("smoke", "vx", "vy"),
        param_names=("buoyancy", "ic_noise_coef"),
        boundary="closed_box",
        params_doc={
            "buoyancy": "buoyancy factor b of the force b s y_hat",
            "ic_noise_coef": (
                "coefficients (a_1..a_M, c_1..c_M) of the initial smoke s0 = |sum_m a_m cos(theta_m) + c_m "
                "sin(theta_m)|, theta_m = 2 pi (m_x x / Lx + m_y y / Ly), modes m listed in the sampling "
                "attribute, shape (N, 2M)"
            ),
        },
        symmetries=NS2D_SYMMETRIES,
        dynamics_params=("buoyancy",),
    ),
}


def get_pde(name: str) -> PDESpec:
    """Look a PDE up by name; raises ``KeyError`` with the known names if absent."""
    try:
        return PDES[name]
    except KeyError:
        raise KeyError(f"unknown pde {name!r} (known: {', '.join(PDES)})") from None


def pde_index(name: str) -> int:
    """A registry PDE's position in :data:`PDES` (its class in a batch of several PDEs: the ``pde`` entry of
    :class:`~ssl_pde.data.mixed.MixedDataset` batches); raises ``KeyError`` with the known names if absent."""
    get_pde(name)
    return list(PDES).index(name)
