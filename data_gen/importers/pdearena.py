"""PDEArena's conditioned 2D Navier-Stokes smoke files mapped onto the registry's ns2d.

Layout (``NavierStokes2D_{mode}_{seed}_{buoyancy:.5f}[_{n}].h5``, one group named after the split)::

    /<mode>/u, vx, vy   (N, T, X, Y) float64   smoke, x- and y-velocity; axis 2 is x, axis 3 is y
    /<mode>/t           (N, T)                 linspace(tmin, tmax, T)
    /<mode>/dt          (N,)                   the solver's interval between stored frames
    /<mode>/x, y        (N, X), (N, Y)         linspace(0, L, n): node positions
    /<mode>/dx, dy      (N,)                   L / (n - 1)
    /<mode>/buo_y       (N,)                   buoyancy (one value per upstream file)

Quirks, corrected where the physics is known and recorded: the spacing of ``t`` is not the solver's frame interval
``dt`` (the shard's times are ``t[0] + k dt``); ``x``/``y`` are node positions ``linspace(0, L, n)`` while PhiFlow's
grid is cell-centred (the shard's coordinates are the centres ``(i + 1/2) L / n``, as this project's ns2d generator
stores them); ``vx``/``vy`` are staggered face values cropped to the grid (kept as given, recorded).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from data_gen.importers.base import (
    Boundary,
    Mapped,
    Param,
    SourceError,
    array,
    expect_keys,
    field_shape,
    registry_unknown,
    spacing_note,
    split_group,
)
from ssl_pde.pdes import PDES

FIELDS = {"smoke": "u", "vx": "vx", "vy": "vy"}  # registry ns2d channel -> PDEArena dataset
COORDS = ("t", "dt", "x", "dx", "y", "dy", "buo_y")


def cell_centres(nodes: np.ndarray) -> np.ndarray:
    """Cell centres (N, n) of the grids whose node positions ``linspace(a, a + L, n)`` are ``nodes`` (N, n)."""
    n = nodes.shape[1]
    extent = nodes[:, -1:] - nodes[:, :1]
    return nodes[:, :1] + (np.arange(n) + 0.5) * extent / n


def read(f: h5py.File, path: Path) -> Mapped:
    """Map a PDEArena NS2D smoke file; the split is its group's name.

    Raises:
        SourceError: a missing, unexpected or misshapen key.
    """
    mode = split_group(f, path)
    g = f[mode]
    expect_keys(g, [*FIELDS.values(), *COORDS], path)
    n, nt, nx, ny = field_shape(g["u"], f"/{mode}/u", 4, path)
    for key in ("vx", "vy"):
        if field_shape(g[key], f"/{mode}/{key}", 4, path) != (n, nt, nx, ny):
            raise SourceError(f"{path}: '/{mode}/{key}' has shape {g[key].shape}, unlike /{mode}/u {(n, nt, nx, ny)}")
    t, dt = array(g, "t", (n, nt), path), array(g, "dt", (n,), path)
    x, dx = array(g, "x", (n, nx), path), array(g, "dx", (n,), path)
    y, dy = array(g, "y", (n, ny), path), array(g, "dy", (n,), path)
    buoyancy = array(g, "buo_y", (n,), path)
    frames = t[:, :1] + np.arange(nt) * dt[:, None]  # the solver's frame times from the first stored one
    datasets = [g[FIELDS[name]] for name in PDES["ns2d"].field_names]
    return Mapped(
        dataset="ns2d",
        pde="ns2d",
        split=mode,
        n=n,
        field_names=PDES["ns2d"].field_names,
        trajectory=lambda i: np.stack([ds[i] for ds in datasets], axis=1),
        t=frames,
        grid={"x": cell_centres(x), "y": cell_centres(y)},
        params={
            "buoyancy": Param(buoyancy, PDES["ns2d"].params_doc["buoyancy"], f"/{mode}/buo_y"),
            "dt": Param(dt, "the solver's interval between stored frames, as PDEArena stores it", f"/{mode}/dt"),
            "dx": Param(dx, "x spacing L / (nx - 1) of PDEArena's node grid, as stored", f"/{mode}/dx"),
            "dy": Param(dy, "y spacing L / (ny - 1) of PDEArena's node grid, as stored", f"/{mode}/dy"),
        },
        boundary=PDES["ns2d"].boundary,
        boundaries=[Boundary("box", "WALL", "x y", "PDEArena's closed smoke box (not stored in the file)")],
        equation=PDES["ns2d"].equation,
        unknown=registry_unknown(
            "ns2d", ["buoyancy"], "PDEArena stores no initial-smoke parameters (the seed is in the file name only)"
        ),
        notes={
            "time": (
                f"/t is t[0] + k dt: the solver advanced dt per stored frame; PDEArena's own t is linspace(tmin, tmax,"
                f" T), {spacing_note(t, dt).replace('both are kept: /t as given, params/dt', 'source t not kept')}"
            ),
            "grid": (
                "/x and /y are the cell centres (i + 1/2) L / n of PhiFlow's grid, L = x[-1] - x[0] of PDEArena's "
                "x and y, which are linspace(0, L, n) node positions (its dx, dy = L / (n - 1) kept as params)"
            ),
            "velocity": (
                "vx and vy are PhiFlow's staggered face values cropped to (X, Y), not interpolated to cell centres "
                "(this project's ns2d generator stores centre values)"
            ),
            "channels": "smoke <- u, vx <- vx, vy <- vy",
            "values": "u, vx, vy are PDEArena's float64, rounded to float32",
        },
    )
