"""LPSDA 1D files (KdV, KS, and the heat equation its Burgers mode writes) mapped onto the schema.

Layout (``{PDE}_{mode}[_{n}][_{suffix}].h5``, one group named after the split)::

    /<mode>/pde_<nt>-<nx>   (N, nt, nx) float64   u(t, x)
    /<mode>/x               (N, nx)               per-trajectory grid, linspace(0, (1 - 1/nx) L, nx)
    /<mode>/dx              (N,)                  L / nx
    /<mode>/t               (N, nt)               the last nt frames of linspace(0, T, nt_solver)
    /<mode>/dt              (N,)                  T / (nt_solver - 1)

No PDE parameter is stored: the equation comes from the file name (``KdV_*`` -> kdv, ``KS_*`` -> ks, ``Heat_*``
-> the external dataset ``heat``), the domain length is ``dx * nx`` and the final time ``t[-1]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from data_gen.importers.base import (
    Mapped,
    Param,
    SourceError,
    array,
    field_shape,
    periodic_1d,
    registry_unknown,
    spacing_note,
    split_group,
)
from ssl_pde.pdes import PDES

FILE_NAME = re.compile(r"(KdV|KS|Heat)_")
FIELD_KEY = re.compile(r"pde_(\d+)-(\d+)")
EQUATIONS = {"KdV": "kdv", "KS": "ks", "Heat": None}  # None: not a registry PDE
HEAT = "heat"
HEAT_EQUATION = (
    "u_t = nu u_xx, x in [0, L) periodic (LPSDA's Burgers mode solves the heat equation from the inverse Cole-Hopf "
    "transform of a Burgers initial condition; its nu = 0.01 and L = 2 pi are set in LPSDA's code, not in the file)"
)


def read(f: h5py.File, path: Path) -> Mapped:
    """Map an LPSDA file; the split is its group's name.

    Raises:
        SourceError: a file name that does not say the equation, or a missing, unexpected or misshapen key.
    """
    m = FILE_NAME.match(path.name)
    if m is None:
        raise SourceError(f"{path}: the file name does not say the equation (LPSDA names files KdV_*, KS_*, Heat_*)")
    mode = split_group(f, path)
    g = f[mode]
    fields = [k for k in g if FIELD_KEY.fullmatch(k)]
    if not fields:
        raise SourceError(f"{path}: missing key '/{mode}/pde_<nt>-<nx>' (the solution)")
    key = fields[0]
    for k in g:
        if k not in (key, "x", "dx", "t", "dt"):
            raise SourceError(f"{path}: unexpected key '/{mode}/{k}' (expected {key}, x, dx, t, dt)")
    n, nt, nx = field_shape(g[key], f"/{mode}/{key}", 3, path)
    if (nt, nx) != tuple(int(v) for v in FIELD_KEY.fullmatch(key).groups()):
        raise SourceError(f"{path}: '/{mode}/{key}' has shape {(n, nt, nx)}, which its name contradicts")
    t, x = array(g, "t", (n, nt), path), array(g, "x", (n, nx), path)
    dt, dx = array(g, "dt", (n,), path), array(g, "dx", (n,), path)
    pde = EQUATIONS[m.group(1)]
    doc = PDES["ks"].params_doc  # domain_length and t_end mean the same for every registry 1D PDE
    params = {
        "domain_length": Param(dx * nx, doc["domain_length"], f"/{mode}/dx times nx = {nx} (LPSDA stores no L)"),
        "t_end": Param(t[:, -1].copy(), doc["t_end"], f"/{mode}/t[:, -1]"),
        "dt": Param(dt, "interval between stored frames, T / (nt_solver - 1), as LPSDA stores it", f"/{mode}/dt"),
        "dx": Param(dx, "grid spacing L / nx, as LPSDA stores it", f"/{mode}/dx"),
    }
    solver_frames = np.rint(t[:, -1] / dt).astype(int) + 1
    return periodic_1d(
        g[key],
        "LPSDA's pseudospectral solver (not stored in the file)",
        dataset=pde or HEAT,
        pde=pde,
        split=mode,
        n=n,
        t=t,
        grid={"x": x},
        params=params,
        equation=PDES[pde].equation if pde else HEAT_EQUATION,
        unknown=registry_unknown(pde, params, "LPSDA stores no initial-condition parameters") if pde else {},
        notes={
            "equation": f"from the file name prefix {m.group(1)!r}",
            "time": (
                f"/t is LPSDA's t as stored: the last {nt} of nt_solver = t_end / dt + 1 frames of a solve on "
                f"[0, t_end], like this project's kdv and ks shards; {spacing_note(t, dt)}"
            ),
            "time_start": (
                f"t does not start at 0 (first frame {float(t[:, 0].min()):.6g} .. {float(t[:, 0].max()):.6g}); "
                f"the solve's frame count is not stored (t_end / dt + 1 = {sorted(set(solver_frames.tolist()))})"
            ),
            "grid": "/x is LPSDA's per-trajectory x as stored: linspace(0, L - dx, nx), L = dx * nx",
            "values": "u is LPSDA's float64, rounded to float32",
        },
    )
