"""PDEBench 1D Burgers files mapped onto the registry's burgers.

Layout (written by PDEBench's ``Data_Merge.py``; built from that documented layout, not tested on an upstream-written
file)::

    /tensor         (N, T, X) float32   u(t, x)
    /x-coordinate   (X,)                cell centres of [0, 1)
    /t-coordinate   (T + 1,) or (T,)    frame times; PDEBench's Burgers generator writes one more than T
    @Nu                                 the viscosity of u_t + (u^2 / 2)_x = (Nu / pi) u_xx

The registry's burgers is ``u_t + u u_x = nu u_xx``, so ``nu = Nu / pi``; ``Nu`` is kept as given. The file does
not say its split (pass ``split=``).
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

from data_gen.importers import base
from data_gen.importers.base import Param, SourceError, array, expect_keys, field_shape, periodic_1d, registry_unknown
from ssl_pde.pdes import PDES

KEYS = ("tensor", "x-coordinate", "t-coordinate")


def read(f: h5py.File, path: Path) -> base.Mapped:
    """Map a PDEBench 1D Burgers file (no split: the command's ``split=``).

    Raises:
        SourceError: a missing or unexpected key or root attribute (e.g. ``beta``: advection), or a misshapen one.
    """
    expect_keys(f, KEYS, path)
    for name in f.attrs:
        if name != "Nu":
            raise SourceError(
                f"{path}: unexpected root attribute {name!r} (only 1D Burgers files, with Nu, are mapped)"
            )
    if "Nu" not in f.attrs:
        raise SourceError(f"{path}: missing root attribute 'Nu' (the Burgers viscosity)")
    n, nt, nx = field_shape(f["tensor"], "/tensor", 3, path)
    if nx < 2:
        raise SourceError(f"{path}: '/tensor' has {nx} grid point(s); a grid spacing needs at least 2")
    x = array(f, "x-coordinate", (nx,), path)[None]
    nt_coord = len(f["t-coordinate"]) if f["t-coordinate"].ndim == 1 else -1
    if nt_coord not in (nt, nt + 1):
        raise SourceError(
            f"{path}: '/t-coordinate' has shape {f['t-coordinate'].shape}, expected ({nt},) or ({nt + 1},)"
        )
    t = array(f, "t-coordinate", (nt_coord,), path)[None, :nt]
    nu_raw = np.array([float(f.attrs["Nu"])])
    doc = PDES["burgers"].params_doc
    return periodic_1d(
        f["tensor"],
        "PDEBench's periodic Burgers setting (not stored in the file)",
        dataset="burgers",
        pde="burgers",
        split=None,  # the command's split=
        n=n,
        t=t,
        grid={"x": x},
        params={
            "nu": Param(nu_raw / math.pi, doc["nu"], "root attribute Nu divided by pi, the same for every trajectory"),
            "Nu": Param(
                nu_raw, "PDEBench's viscosity Nu as given (diffusion term (Nu / pi) u_xx)", "root attribute Nu"
            ),
            "domain_length": Param(
                nx * (x[:, 1] - x[:, 0]), doc["domain_length"], "x-coordinate: nx times its spacing"
            ),
            "t_end": Param(t[:, -1].copy(), doc["t_end"], "t-coordinate at the last stored frame"),
        },
        equation=PDES["burgers"].equation,
        unknown=registry_unknown("burgers", ["nu", "domain_length", "t_end"], "PDEBench stores no initial condition"),
        notes={
            "viscosity": "PDEBench's generator diffuses with (Nu / pi) u_xx: params/nu = Nu / pi, params/Nu as given",
            "time": (
                f"/t is t-coordinate[:{nt}]: the file has {nt_coord} times for {nt} frames"
                + (" (PDEBench's Burgers generator writes one more time than frames)" if nt_coord > nt else "")
            ),
            "grid": "/x is x-coordinate (cell centres) for every trajectory",
            "tested": "built from PDEBench's documented layout; not tested on an upstream-written file",
        },
    )
