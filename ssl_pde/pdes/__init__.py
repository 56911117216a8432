"""Registry of PDE specifications: the single source of truth for coordinate, field and parameter names.

``PDES[name]`` gives a :class:`PDESpec`. Solvers (``data_gen``), the HDF5 schema, data loaders and the
symmetry module all look names up here, so a field or parameter is spelled in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """

    name: str
    equation: str
    coord_names: tuple[str, ...]
    field_names: tuple[str, ...]
    param_names: tuple[str, ...]
    boundary: str
    params_doc: dict[str, str] = field(default_factory=dict)

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

PDES: dict[str, PDESpec] = {
    "burgers": PDESpec(
        name="burgers",
        equation="u_t + u u_x = nu u_xx, x in [0, L) periodic",
        coord_names=("t", "x"),
        field_names=("u",),
        param_names=("nu", "domain_length", "t_end", "ic_amplitude", "ic_phase", "ic_wavenumber"),
        boundary="periodic",
        params_doc={"nu": "kinematic viscosity nu", **_SINES_DOC},
    ),
    "kdv": PDESpec(
        name="kdv",
        equation="u_t + u u_x + u_xxx = 0, x in [0, L) periodic",
        coord_names=("t", "x"),
        field_names=("u",),
        param_names=("domain_length", "t_end", "ic_amplitude", "ic_phase", "ic_wavenumber"),
        boundary="periodic",
        params_doc=dict(_SINES_DOC),
    ),
    "ks": PDESpec(
        name="ks",
        equation="u_t + u u_x + u_xx + u_xxxx = 0, x in [0, L) periodic",
        coord_names=("t", "x"),
        field_names=("u",),
        param_names=("domain_length", "t_end", "ic_amplitude", "ic_phase", "ic_wavenumber"),
        boundary="periodic",
        params_doc=dict(_SINES_DOC),
    ),
}


def get_pde(name: str) -> PDESpec:
    """Look a PDE up by name; raises ``KeyError`` with the known names if absent."""
    try:
        return PDES[name]
    except KeyError:
        raise KeyError(f"unknown pde {name!r} (known: {', '.join(PDES)})") from None
