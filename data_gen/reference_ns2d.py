"""Independent reference for ns2d: PhiFlow, the solver of PDEArena's "conditioned smoke" data (optional).

PhiFlow (``pip install phiflow``; not a dependency of this project) shares nothing with
:mod:`data_gen.solvers.ns2d` but the equations: semi-Lagrangian advection of the smoke and of the staggered
velocity, buoyancy resampled to the faces, explicit diffusion and a pressure projection by a sparse solve,
on its own staggered grid with ZERO (no-slip) velocity and BOUNDARY (zero-gradient) smoke extrapolation.
This is PDEArena's step (``pdearena/pdedatagen/navier_stokes.py``). Run in float64 with a direct
pressure solve it converges (at first order, semi-Lagrangian) to the same solution as this project's solver,
which ``ssl-pde-verify pde=ns2d`` measures; run with PDEArena's step of 1.5 it is the speed baseline of
``scripts/bench_datagen.py --pde ns2d``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np


def phiflow_available() -> bool:
    """Whether PhiFlow can be imported."""
    try:
        import phi.flow  # noqa: F401
    except ImportError:
        return False
    return True


def phiflow_smoke(
    s0: np.ndarray | None,
    buoyancy: float,
    dt: float,
    steps: int,
    nx: int,
    length: float = 32.0,
    nu: float = 0.01,
    tol: float = 1e-10,
    method: str = "scipy-direct",
) -> tuple[np.ndarray, list[float]]:
    """Run PDEArena's PhiFlow smoke step ``steps`` times from rest, one trajectory, in float64.

    Args:
        s0: initial smoke (nx, nx) at the cell centres, indexed [x, y]; ``None`` for PDEArena's own
            ``|Noise(scale=11, smoothness=6)|`` (PhiFlow's random stream, seeded with 0).
        buoyancy: b of the force ``(0, b s)``.
        dt, steps: step size and count.
        nx: cells per axis of the square box of side ``length``.
        nu: viscosity.
        tol: relative and absolute tolerance of the pressure solve.
        method: PhiFlow's linear solver for the pressure: the sparse direct solve by default (PhiFlow's CG
            stops with "diverged" on the singular Neumann system below tolerances of about 1e-5 as the flow
            develops); ``"CG"`` for PDEArena's iterative solve.

    Returns:
        The final state (3, nx, nx) as (smoke, vx, vy) at the cell centres, and the seconds of each step.

    Raises:
        ImportError: PhiFlow is not installed.
    """
    from phi import flow as pf
    from phi import math as pm

    bounds = pf.Box(x=length, y=length)
    solve = pf.Solve(method, tol, tol, max_iterations=100_000)
    times = []
    with warnings.catch_warnings(), pm.precision(64):
        warnings.simplefilter("ignore")
        if s0 is None:
            pm.seed(0)
            values = pf.Noise(scale=11.0, smoothness=6.0)
            smoke = abs(pf.CenteredGrid(values, pf.extrapolation.BOUNDARY, x=nx, y=nx, bounds=bounds))
        else:
            values = pm.tensor(np.asarray(s0, dtype=np.float64), pm.spatial("x,y"))
            smoke = pf.CenteredGrid(values, pf.extrapolation.BOUNDARY, x=nx, y=nx, bounds=bounds)
        velocity = pf.StaggeredGrid(0, pf.extrapolation.ZERO, x=nx, y=nx, bounds=bounds)
        for _ in range(steps):
            t0 = time.perf_counter()
            smoke = pf.advect.semi_lagrangian(smoke, velocity, dt)
            force = pf.resample(smoke * (0, buoyancy), to=velocity)
            velocity = pf.advect.semi_lagrangian(velocity, velocity, dt) + dt * force
            velocity = pf.diffuse.explicit(velocity, nu, dt)
            velocity, _ = pf.fluid.make_incompressible(velocity, solve=solve)
            times.append(time.perf_counter() - t0)
        s = smoke.values.numpy("x,y")
        v = velocity.at_centers().values.numpy("vector,x,y")
    return np.concatenate([s[None], v]), times
