"""Solver accuracy studies: time and space refinement with observed order, and agreement with the
independent scipy Radau reference (:mod:`data_gen.reference`; for ns2d PhiFlow, :mod:`data_gen.reference_ns2d`).
Used by ``ssl-pde-verify``, the tests and ``scripts/bench_datagen.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from data_gen.reference import reference_solve
from data_gen.solvers.base import PeriodicGenerator1D, TrajectoryGenerator


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Relative L2 difference ``||a - b|| / ||b||`` over all entries."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def short_horizon(gen: PeriodicGenerator1D, t_end: float, nt: int) -> PeriodicGenerator1D:
    """The same generator on a short horizon: ``nt`` frames on [0, t_end], all stored, no jitter of T."""
    return gen.with_overrides(t_end=t_end, t_end_jitter=0.0, nt=nt, nt_total=nt)


@dataclass
class RefinementRow:
    """One line of a refinement table: the resolution, the error against the finest run, the order."""

    resolution: float
    error: float
    order: float


def _orders(res: list[float], errs: list[float]) -> list[float]:
    out = [math.nan]
    for i in range(1, len(errs)):
        if errs[i] > 0 and errs[i - 1] > 0:
            out.append(math.log(errs[i - 1] / errs[i]) / math.log(res[i - 1] / res[i]))
        else:
            out.append(math.nan)
    return out


def time_refinement(
    gen: PeriodicGenerator1D, seeds: np.ndarray, substeps: list[int], device: str = "cpu"
) -> list[RefinementRow]:
    """Errors at the stored frames for increasing substeps, against a run with 4x the finest substeps.

    Resolution is the internal time step (of the longest-interval trajectory). The observed order is
    ``log(e_{i-1}/e_i) / log(dt_{i-1}/dt_i)`` and should approach 4 for ETDRK4.
    """
    params = gen.sample_params(seeds)
    _, dt_store = gen.stored_times(params)
    ref, _ = gen.solve(params, device, substeps=4 * max(substeps))
    dts, errs = [], []
    for s in substeps:
        sol, _ = gen.solve(params, device, substeps=s)
        dts.append(float(np.max(dt_store)) / s)
        errs.append(rel_l2(sol.u.cpu().numpy(), ref.u.cpu().numpy()))
    return [RefinementRow(r, e, o) for r, e, o in zip(dts, errs, _orders(dts, errs), strict=True)]


def space_refinement(
    gen: PeriodicGenerator1D, seeds: np.ndarray, grids: list[int], device: str = "cpu"
) -> list[RefinementRow]:
    """Errors on the coarsest grid's points for increasing ``solver_nx``, against 2x the finest grid.

    Spectral methods converge faster than any power: the observed "order" grows as the grid refines,
    until the error reaches the time-discretisation and rounding floor.
    """
    coarse = min(grids)
    finest = gen.with_overrides(nx=coarse, solver_nx=2 * max(grids))
    params = gen.sample_params(seeds)
    ref, _ = finest.solve(params, device)
    ref_u = ref.u[:, :, :: (2 * max(grids)) // coarse].cpu().numpy()
    hs, errs = [], []
    for n in grids:
        g = gen.with_overrides(nx=coarse, solver_nx=n)
        sol, _ = g.solve(params, device)
        hs.append(1.0 / n)
        errs.append(rel_l2(sol.u[:, :, :: n // coarse].cpu().numpy(), ref_u))
    return [RefinementRow(n, e, o) for n, e, o in zip(grids, errs, _orders(hs, errs), strict=True)]


@dataclass
class ReferenceAgreement:
    """Agreement of the batched solver with the serial Radau reference on the same trajectories."""

    rel_l2: list[float]
    seconds_reference: float
    seconds_solver: float


def reference_agreement(
    gen: PeriodicGenerator1D,
    seeds: np.ndarray,
    device: str = "cpu",
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> ReferenceAgreement:
    """Solve the trajectories of ``seeds`` with ``gen`` (batched) and with scipy Radau, one at a time.

    Both start from the same initial condition on the solver grid and are compared in float64 at
    every stored frame, on the solver grid: per trajectory ``||u - u_ref|| / ||u_ref||``.
    """
    params = gen.sample_params(seeds)
    t, _ = gen.stored_times(params)
    t0 = time.perf_counter()
    sol, xs = gen.solve(params, device)
    u = sol.u.cpu().numpy()
    t_solver = time.perf_counter() - t0
    u0 = gen.initial_condition(xs, params).cpu().numpy()
    errs = []
    t0 = time.perf_counter()
    for i in range(len(seeds)):
        nu = float(params["nu"][i]) if "nu" in params else None
        t_eval = np.concatenate([[0.0], t[i]]) if t[i][0] > 0 else t[i]
        ref = reference_solve(gen.pde, u0[i], float(params["domain_length"][i]), t_eval, nu, rtol, atol=atol)
        errs.append(rel_l2(u[i], ref[-len(t[i]) :]))
    return ReferenceAgreement(errs, time.perf_counter() - t0, t_solver)


def sync(device: str) -> None:
    """Wait for queued GPU work (no-op on the CPU), for timing."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def estimate_time_error(gen: TrajectoryGenerator, seeds: np.ndarray, device: str = "cpu", frames: int = 11) -> float:
    """Richardson estimate of the time-discretisation error of ``gen``'s step on an initial stretch.

    Solves ``seeds`` over the first ``frames`` stored intervals of [0, t_end] (no transient skipped)
    with the generator's substeps and with twice as many; for a 4th-order scheme the error of the
    coarse run is about 16/15 of their difference. Returns that relative L2 estimate (``inf`` when a
    run is not finite, i.e. the step is unstable). Other generators (2D Navier-Stokes) provide their
    own ``estimate_time_error(seeds, device)``.
    """
    if not isinstance(gen, PeriodicGenerator1D):
        return gen.estimate_time_error(seeds, device)
    params = gen.sample_params(seeds)
    _, dt_store = gen.stored_times(params)
    s = gen.substeps(dt_store)
    shrink = (frames - 1) / max(gen.nt_total - 1, 1)  # same stored interval, fewer frames
    head = gen.with_overrides(nt=frames, nt_total=frames, t_end=gen.t_end * shrink)
    params = {**params, "t_end": params["t_end"] * shrink}
    coarse, _ = head.solve(params, device, substeps=s)
    fine, _ = head.solve(params, device, substeps=2 * s)
    if not (bool(coarse.finite.all()) and bool(fine.finite.all())):
        return math.inf
    return 16 / 15 * rel_l2(coarse.u.cpu().numpy(), fine.u.cpu().numpy())


# ---------------------------------------------------------------------------------------------- 2D Navier-Stokes
def _rel_l2_t(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def ns2d_time_refinement(gen, seeds: np.ndarray, substeps: list[int], device: str = "cpu") -> list[RefinementRow]:
    """NS2D errors at the stored frames (all channels, float64) for increasing substeps, against a run
    with 4x the finest substeps on the same grid. Resolution: the internal step. SSP-RK3 with a
    projection per stage: the observed order should approach 3.
    """
    params = gen.sample_params(seeds)
    _, dt_store = gen.stored_times(params)
    ref = gen.solve(params, device, substeps=4 * max(substeps), keep_float64=True)["u"]
    dts, errs = [], []
    for s in substeps:
        dts.append(float(dt_store[0]) / s)
        errs.append(_rel_l2_t(gen.solve(params, device, substeps=s, keep_float64=True)["u"], ref))
    return [RefinementRow(r, e, o) for r, e, o in zip(dts, errs, _orders(dts, errs), strict=True)]


def _block_average(u: torch.Tensor, f: int) -> torch.Tensor:
    """Cell-centred fields (..., X, Y) averaged over f x f blocks of cells (the cell average on the coarse grid)."""
    *lead, nx, ny = u.shape
    return u.reshape(*lead, nx // f, f, ny // f, f).mean(dim=(-3, -1))


def ns2d_space_refinement(gen, seeds: np.ndarray, grids: list[int], device: str = "cpu") -> list[RefinementRow]:
    """NS2D errors on the coarsest grid's cells (block averages of all channels) for ``nx = ny = n`` in
    ``grids``, against a run on 2x the finest grid; the internal step shrinks with the cell size (fixed
    CFL number). A second-order finite-volume scheme gives an order of about 2 (the limiter and the
    no-slip walls lower it locally).
    """
    coarse, finest = min(grids), 2 * max(grids)

    def run(n: int) -> torch.Tensor:
        g = gen.with_overrides(nx=n, ny=n, dt_max=gen.dt_max * gen.nx / n)
        return _block_average(g.solve(g.sample_params(seeds), device, keep_float64=True)["u"], n // coarse)

    ref = run(finest)
    hs, errs = [], []
    for n in grids:
        hs.append(1.0 / n)
        errs.append(_rel_l2_t(run(n), ref))
    return [RefinementRow(n, e, o) for n, e, o in zip(grids, errs, _orders(hs, errs), strict=True)]


@dataclass
class PrecisionRow:
    """One right-hand-side precision at the generation grid and step: its error against a float64 run on twice
    the grid (block-averaged onto the generation cells), its difference from the float64 run on the same grid,
    the largest stored divergence, and the solve's wall-clock seconds."""

    advection_dtype: str
    error: float
    difference_from_float64: float
    divergence: float
    seconds: float


def ns2d_precision_study(
    gen, seeds: np.ndarray, device: str = "cpu", dtypes: tuple[str, ...] = ("float64", "float32")
) -> list[PrecisionRow]:
    """NS2D total error of each right-hand-side precision (``advection_dtype``) at the generation grid and step,
    against a float64 run on 2x the grid (internal step halved): does single-precision advection keep the
    verified accuracy? The reference is independent of the variants (finer grid, double precision)."""
    params = gen.sample_params(seeds)
    fine = gen.with_overrides(nx=2 * gen.nx, ny=2 * gen.ny, dt_max=gen.dt_max / 2, advection_dtype="float64")
    ref = _block_average(fine.solve(fine.sample_params(seeds), device, keep_float64=True)["u"], 2)
    rows, base = [], None
    for name in sorted(dtypes, key=lambda d: d != "float64"):  # float64 first: the others' difference is from it
        g = gen.with_overrides(advection_dtype=name)
        sync(device)
        t0 = time.perf_counter()
        out = g.solve(params, device, keep_float64=True)
        sync(device)
        sec = time.perf_counter() - t0
        u = out["u"]
        base = u if base is None and name == "float64" else base
        diff = _rel_l2_t(u, base) if base is not None else math.nan
        rows.append(PrecisionRow(name, _rel_l2_t(u, ref), diff, float(out["divergence"].max()), sec))
    return rows


@dataclass
class PhiFlowRow:
    """One grid of the PhiFlow comparison: errors of both solvers against this solver's finer run."""

    cells: int
    error_solver: float
    error_phiflow: float
    order_phiflow: float
    seconds_phiflow: float


def ns2d_phiflow_agreement(
    gen, seed: int, grids: list[int], t_end: float, dt_per_dx: float, device: str = "cpu"
) -> list[PhiFlowRow]:
    """This solver and PhiFlow (:mod:`data_gen.reference_ns2d`) from the same initial smoke and buoyancy.

    On [0, ``t_end``] from rest, for ``nx = ny = n`` in ``grids``: this solver (dt proportional to the
    cell size) and PhiFlow (dt = ``dt_per_dx`` * dx, float64, direct pressure solve), each compared on the coarsest
    grid's cells (block averages, all channels) with this solver on 2x the finest grid. PhiFlow's error
    falling under refinement means both converge to the same solution (PhiFlow's semi-Lagrangian
    advection is first order, so it falls slowly).
    """
    from data_gen.reference_ns2d import phiflow_smoke

    short = gen.with_overrides(t_start=0.0, t_end=t_end, nt=2)
    seeds = np.array([seed], dtype=np.int64)
    coarse, finest = min(grids), 2 * max(grids)

    def ours(n: int):
        g = short.with_overrides(nx=n, ny=n, dt_max=short.dt_max * short.nx / n)
        p = g.sample_params(seeds)
        return g, p, g.solve(p, device, keep_float64=True)["u"][0, -1].cpu().numpy()

    def err(u: np.ndarray, ref: np.ndarray) -> float:
        f = u.shape[-1] // coarse
        return rel_l2(_block_average(torch.as_tensor(u), f).numpy(), ref)

    _, _, ref = ours(finest)
    ref = _block_average(torch.as_tensor(ref), finest // coarse).numpy()
    rows, hs, errs = [], [], []
    for n in grids:
        g, p, u = ours(n)
        dx = g.length_x / n
        steps = max(1, round(t_end / (dt_per_dx * dx)))
        s0 = g.initial_smoke(p)[0].numpy()
        up, times = phiflow_smoke(s0, float(p["buoyancy"][0]), t_end / steps, steps, n, g.length_x, nu=g.nu)
        hs.append(1.0 / n)
        errs.append(err(up, ref))
        rows.append(PhiFlowRow(n, err(u, ref), errs[-1], math.nan, float(sum(times))))
    for r, o in zip(rows, _orders(hs, errs), strict=True):
        r.order_phiflow = o
    return rows
