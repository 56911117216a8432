#!/usr/bin/env python
"""Benchmark of data generation: the batched ETDRK4 solver against the serial scipy Radau baseline.

The baseline is the LPSDA method (Brandstetter et al.): one trajectory at a time with
``scipy.integrate.solve_ivp(method="Radau", rtol=atol=1e-9)`` on the method-of-lines discretisation
(:mod:`data_gen.reference`). For each 1D PDE (burgers, kdv, ks), in one run on one machine:

1. **Full setting** (``configs/solver/<pde>.yaml``: whole horizon, stored frames): trajectories/s of
   ``generate()`` on ``--n-batch`` seeds (after a tiny warm-up, synchronised on GPU), and of Radau on
   the *stored* grid (LPSDA's resolution) from the same initial conditions on the same time grid, for
   ``--n-ref`` trajectories; the ratio; and the relative L2 difference between the two at the stored
   frames on the stored grid. For the chaotic KS/KdV over the full horizon this difference is not an
   accuracy measure (chaos amplifies any difference), hence:
2. **Short-horizon accuracy** (``data_gen.verify.short_horizon``): our solver in float64 on the solver
   grid against Radau on the same grid (rtol=atol=1e-9), median/max relative L2 over ``--n-check``
   trajectories, and both rates on that setting. Burgers uses ``solver_nx=512`` here (Radau's dense
   Jacobian makes 2048 points very slow).
3. **Shard pipeline**: ``data_gen.writer.generate_shard_data`` + ``write_shard`` of one HDF5 shard of
   ``--n-shard`` trajectories into a temporary directory: trajectories/s including HDF5 writing.

Prints tables and writes ``<out>/datagen_<tag>.json`` (raw numbers, machine info, command line) and
``<out>/datagen_<tag>.md``. Results are written after every PDE, so an interrupted run keeps what it has.

    python scripts/bench_datagen.py                       # CPU defaults: a few minutes on 2 quiet cores
    python scripts/bench_datagen.py --device cuda         # GPU
    python scripts/bench_datagen.py --pdes ks --n-batch 32 --n-ref 1 --tag smoketest --out /tmp/bench

Every report lists the machine ceilings (:func:`benchlib.ceilings`) measured in the same run.
``--pde ns2d`` runs the 2D Navier-Stokes benchmark instead (:mod:`bench_ns2d`, report
``datagen_ns2d_<tag>``): ``python scripts/bench_datagen.py --pde ns2d ...`` is ``python scripts/bench_ns2d.py ...``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The Radau baseline factorises small dense matrices (256 x 256): threaded BLAS only adds overhead there,
# and on a busy 2-core machine it made a KS solve >10x slower. The baseline therefore runs on one core
# unless the caller sets OPENBLAS_NUM_THREADS (this must happen before numpy/scipy load OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, also when this file is imported by path

import hydra
import numpy as np
import torch
from bench_datagen_report import NOTES, markdown, print_tables
from benchlib import (
    add_common_args,
    ceilings,
    check_common_args,
    error_record,
    load_average,
    machine_info,
    ratio,
    sync,
    time_limit,
    timed,
    timed_best,
    usable_cores,
    utc_now,
    write_report,
)
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from data_gen.reference import reference_solve
from data_gen.solvers import SOLVERS, PeriodicGenerator1D
from data_gen.verify import rel_l2, short_horizon
from data_gen.writer import GenerationError, generate_shard_data, generation_key, trajectory_seed, write_shard
from ssl_pde import CONFIG_DIR
from ssl_pde.core.cli import UserError
from ssl_pde.data.schema import shard_path

#: Radau tolerances of the LPSDA baseline.
RTOL = ATOL = 1e-9
#: Short-horizon accuracy check per PDE: (t_end, nt, generator overrides).
SHORT_HORIZON: dict[str, tuple[float, int, dict[str, Any]]] = {
    "burgers": (0.5, 11, {"solver_nx": 512}),
    "kdv": (10.0, 26, {}),
    "ks": (10.0, 51, {}),
}
SPLIT = "train"
#: The periodic 1D PDEs of the ETDRK4/Radau benchmark (ns2d has its own, :mod:`bench_ns2d`).
PDES_1D = [name for name, cls in SOLVERS.items() if issubclass(cls, PeriodicGenerator1D)]


# ---------------------------------------------------------------------------------------------- helpers
def load_solver(pde: str) -> tuple[PeriodicGenerator1D, DictConfig]:
    """The generator of ``configs/solver/<pde>.yaml`` and the composed ``generate`` config."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="generate", overrides=[f"pde={pde}"])
    gen = hydra.utils.instantiate(cfg.solver)
    if gen.pde != pde:
        raise UserError(f"configs/solver/{pde}.yaml builds a {gen.pde!r} solver")
    return gen, cfg


def shard_seeds(base_seed: int, n: int) -> np.ndarray:
    """The seeds of the first ``n`` trajectories of shard 0 of the train split (as the writer draws them)."""
    return np.array([trajectory_seed(base_seed, SPLIT, 0, i) for i in range(n)], dtype=np.int64)


def warm_up(gen: PeriodicGenerator1D, seeds: np.ndarray, device: str) -> None:
    """A one-interval run of the same batch (kernels, FFT plans, allocator) before timing."""
    params = gen.sample_params(seeds[:1])
    _, dt_store = gen.stored_times(params)
    tiny = short_horizon(gen, float(dt_store[0]), 2)
    timed(lambda: tiny.generate(seeds, device), device)


def run_radau(
    pde: str, u0: np.ndarray, length: float, t_eval: np.ndarray, nu: float | None, timeout: float | None
) -> tuple[np.ndarray | None, float, str]:
    """One Radau solve: (solution or None, seconds, error message or "")."""
    t0 = time.perf_counter()
    try:
        with time_limit(timeout), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ref = reference_solve(pde, u0, length, t_eval, nu, RTOL, atol=ATOL)
        if not np.all(np.isfinite(ref)):
            return None, time.perf_counter() - t0, "non-finite values"
        return ref, time.perf_counter() - t0, ""
    except (RuntimeError, ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return None, time.perf_counter() - t0, f"{type(e).__name__}: {e}"


def radau_batch(
    gen: PeriodicGenerator1D,
    params: dict[str, np.ndarray],
    grid_nx: int,
    timeout: float | None,
    ours: np.ndarray | None,
) -> dict[str, Any]:
    """Radau, one trajectory at a time, on ``grid_nx`` points, at ``gen``'s stored times.

    Args:
        gen: the generator (initial conditions, time grid).
        params: parameters of the trajectories (from ``gen.sample_params``).
        grid_nx: the grid Radau uses (the initial condition is evaluated on it).
        timeout: seconds per trajectory (None: no limit).
        ours: (B, nt, grid_nx) float64 solution of our solver on the same grid and frames, to compare with.

    Returns:
        Per-trajectory seconds, errors, relative L2 and the rate over successful solves.
    """
    t, _ = gen.stored_times(params)
    length = torch.as_tensor(params["domain_length"], dtype=torch.float64)
    xs = torch.arange(grid_nx, dtype=torch.float64)[None, :] * length[:, None] / grid_nx
    u0 = gen.initial_condition(xs, params).numpy()
    rows = []
    for i in range(len(length)):
        nu = float(params["nu"][i]) if "nu" in params else None
        t_eval = np.concatenate([[0.0], t[i]]) if t[i][0] > 0 else t[i]
        ref, sec, err = run_radau(gen.pde, u0[i], float(length[i]), t_eval, nu, timeout)
        row: dict[str, Any] = {"seconds": sec, "error": err, "rel_l2": None}
        if nu is not None:
            row["nu"] = nu
        if ref is not None and ours is not None:
            row["rel_l2"] = rel_l2(ours[i], ref[-len(t[i]) :])
        rows.append(row)
        status = f"rel L2 {row['rel_l2']:.2e}" if row["rel_l2"] is not None else (err or "ok")
        print(f"    radau {i + 1}/{len(length)} on {grid_nx} points: {sec:.1f} s, {status}", flush=True)
    ok = [r for r in rows if not r["error"]]
    seconds_ok = sum(r["seconds"] for r in ok)
    errs = [r["rel_l2"] for r in ok if r["rel_l2"] is not None]
    return {
        "grid_nx": grid_nx,
        "n": len(rows),
        "n_ok": len(ok),
        "seconds_total": sum(r["seconds"] for r in rows),
        "seconds_ok": seconds_ok,
        "traj_per_s": len(ok) / seconds_ok if ok and seconds_ok > 0 else None,
        "rel_l2_median": float(np.median(errs)) if errs else None,
        "rel_l2_max": float(np.max(errs)) if errs else None,
        "trajectories": rows,
    }


# ---------------------------------------------------------------------------------------------- sections
def etdrk4_step_bytes(solver_nx: int) -> int:
    """Compulsory memory traffic of one ETDRK4 step of one trajectory, fixed before any optimisation.

    Counted in float64 arrays of ``solver_nx`` values (a half spectrum of ``nx // 2 + 1`` complex values is one
    such array): the four nonlinear evaluations each read a spectrum and write the grid values (inverse FFT),
    then read those and write a spectrum (forward FFT): 16; the Cox-Matthews combinations read the state and the
    three stage spectra with their four nonlinear terms (8) and the six coefficient arrays (E, E/2, Q, f1, f2,
    f3: per trajectory, since the linear operator depends on its viscosity or domain length), and write the three
    stages and the new state (4): 18. 34 arrays per step.
    """
    return 34 * solver_nx * 8


def bench_full(gen: PeriodicGenerator1D, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Throughput at the config's full setting, and the Radau baseline on the stored grid."""
    seeds = shard_seeds(args.seed, args.n_batch)
    warm_up(gen, seeds, device)
    batch, sec, times = timed_best(lambda: gen.generate(seeds, device), device, args.repeat)
    rejected = [r for r in batch.reasons if r]
    steps = gen.substeps(gen.stored_times(batch.params)[1]) * (gen.nt_total - 1)  # the batch's shared step count
    nbytes = steps * len(seeds) * etdrk4_step_bytes(gen.solver_nx)
    ours = {
        "n": len(seeds),
        "seconds": sec,
        "seconds_all": times,
        "traj_per_s": len(seeds) / sec,
        "steps": steps,
        "bytes": nbytes,
        "bytes_per_s": nbytes / sec,
        "n_ok": int(batch.ok.sum()),
        "rejection_reasons": sorted({r.split(":")[0] for r in rejected}),
    }
    print(
        f"    etdrk4 full setting: {len(seeds)} trajectories in {sec:.2f} s = {ours['traj_per_s']:.2f} traj/s "
        f"({ours['n_ok']} ok)",
        flush=True,
    )
    out: dict[str, Any] = {"etdrk4": ours}
    if args.n_ref > 0:
        n_ref = min(args.n_ref, len(seeds))
        params = {k: v[:n_ref] for k, v in batch.params.items()}
        stored = batch.u[:n_ref, :, 0, :].astype(np.float64)  # (n_ref, nt, nx) on the stored grid
        radau = radau_batch(gen, params, gen.nx, args.ref_timeout, stored)
        out["radau"] = radau
        out["speedup"] = ratio(ours["traj_per_s"], radau["traj_per_s"])
        out["speedup_vs_radau_all_cores"] = ratio(out["speedup"], usable_cores())
    return out


def bench_short(gen: PeriodicGenerator1D, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Short-horizon agreement with Radau on the solver grid, and both rates on that setting."""
    t_end, nt, overrides = SHORT_HORIZON[gen.pde]
    short = short_horizon(gen.with_overrides(**overrides) if overrides else gen, t_end, nt)
    seeds = shard_seeds(args.seed, max(args.n_batch, args.n_check))
    warm_up(short, seeds[: args.n_batch], device)
    _, sec, times = timed_best(lambda: short.generate(seeds[: args.n_batch], device), device, args.repeat)
    ours = {"n": args.n_batch, "seconds": sec, "seconds_all": times, "traj_per_s": args.n_batch / sec}
    print(
        f"    etdrk4 short horizon: {args.n_batch} trajectories in {sec:.2f} s = {ours['traj_per_s']:.2f} traj/s",
        flush=True,
    )
    out: dict[str, Any] = {
        "t_end": t_end,
        "nt": nt,
        "solver_nx": short.solver_nx,
        "overrides": overrides,
        "etdrk4": ours,
    }
    if args.n_check > 0:
        params = short.sample_params(seeds[: args.n_check])
        sol, _ = short.solve(params, device)
        u = sol.u.cpu().numpy()  # float64 on the solver grid
        radau = radau_batch(short, params, short.solver_nx, args.ref_timeout, u)
        out["radau"] = radau
        out["speedup"] = ratio(ours["traj_per_s"], radau["traj_per_s"])
        out["speedup_vs_radau_all_cores"] = ratio(out["speedup"], usable_cores())
    return out


def time_shard(gen: Any, cfg: DictConfig, seed: int, n: int, batch: int, device: str) -> tuple[dict[str, Any], Any]:
    """Generate and write one HDF5 shard of ``n`` trajectories into a temporary directory, timed.

    Returns:
        The timings, sizes and rejections, and the generated ``ShardData`` (for diagnostics).
    """
    solver_cfg = OmegaConf.to_container(cfg.solver, resolve=True)
    key = generation_key(solver_cfg, seed, SPLIT, 0, n)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
        path = shard_path(tmp, gen.pde, SPLIT, 0)
        path.parent.mkdir(parents=True)
        sync(device)
        t0 = time.perf_counter()
        data, seeds, rejections = generate_shard_data(
            gen, seed, SPLIT, 0, n, batch, device=device, max_reject_fraction=float(cfg.max_reject_fraction)
        )
        t1 = time.perf_counter()
        write_shard(path, data, seeds, gen, SPLIT, key, config_yaml=config_yaml, rejections=rejections)
        t2 = time.perf_counter()
        size = path.stat().st_size
    out = {
        "n": n,
        "batch_size": batch,
        "seconds_generate": t1 - t0,
        "seconds_write": t2 - t1,
        "seconds": t2 - t0,
        "traj_per_s": n / (t2 - t0),
        "n_rejected": int(sum(rejections.values())),
        "file_bytes": size,
    }
    return out, data


def bench_shard(gen: PeriodicGenerator1D, cfg: DictConfig, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Generate and write one HDF5 shard of ``--n-shard`` trajectories into a temporary directory."""
    n = args.n_shard or args.n_batch
    warm_up(gen, shard_seeds(args.seed, min(n, args.n_batch)), device)
    out, _ = time_shard(gen, cfg, args.seed, n, args.n_batch, device)
    print(
        f"    shard pipeline: {n} trajectories in {out['seconds']:.2f} s (write {out['seconds_write']:.2f} s) = "
        f"{out['traj_per_s']:.2f} traj/s, {out['file_bytes'] / 2**20:.1f} MiB",
        flush=True,
    )
    return out


def bench_pde(pde: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Every section for one PDE; a failing section is recorded and the others still run."""
    gen, cfg = load_solver(pde)
    res: dict[str, Any] = {
        "usable_cores": usable_cores(),
        "load_average_start": load_average(),
        "solver_config": OmegaConf.to_container(cfg.solver, resolve=True),
        "setting": {
            "solver_nx": gen.solver_nx,
            "nx": gen.nx,
            "nt": gen.nt,
            "nt_total": gen.nt_total,
            "t_end": gen.t_end,
            "t_end_jitter": gen.t_end_jitter,
            "length": gen.length,
            "dt_max": gen.dt_max,
        },
    }
    sections: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    if not args.short_only:
        sections.append(("full", lambda: bench_full(gen, args, device)))
    if not args.skip_short:
        sections.append(("short", lambda: bench_short(gen, args, device)))
    if not args.short_only and not args.skip_shard:
        sections.append(("shard", lambda: bench_shard(gen, cfg, args, device)))
    for name, fn in sections:
        print(f"  [{pde}] {name}", flush=True)
        t0 = time.perf_counter()
        try:
            res[name] = fn()
        except (RuntimeError, ValueError, GenerationError, MemoryError) as e:  # incl. torch OOM
            res[name] = error_record(e)
            print(f"    {name} failed: {res[name]['error']}", flush=True)
        res[name]["section_seconds"] = time.perf_counter() - t0
    res["load_average_end"] = load_average()
    return res


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pdes", nargs="+", default=list(PDES_1D), choices=list(PDES_1D), help="1D PDEs to benchmark")
    p.add_argument(
        "--pde",
        choices=["ns2d", *PDES_1D],
        default=None,
        help="one PDE (ns2d: runs scripts/bench_ns2d.py with the other options, report datagen_ns2d_<tag>)",
    )
    p.add_argument(
        "--n-batch",
        type=int,
        default=None,
        help="trajectories per batch of the batched solver (default: 512 on cpu, 2048 on cuda)",
    )
    p.add_argument("--n-ref", type=int, default=2, help="Radau trajectories at the full setting (default: 2)")
    p.add_argument(
        "--n-check",
        type=int,
        default=4,
        help="trajectories of the short-horizon accuracy check (Radau rate too; default: 4)",
    )
    p.add_argument("--n-shard", type=int, default=None, help="trajectories of the timed shard (default: --n-batch)")
    p.add_argument(
        "--ref-timeout",
        type=float,
        default=120.0,
        help="seconds per Radau trajectory before it is recorded as failed (0: no limit; default: 120)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed runs of the batched solver (full and short setting); the fastest counts (default: 1)",
    )
    p.add_argument("--short-only", action="store_true", help="only the short-horizon check (no full setting, shard)")
    p.add_argument("--skip-short", action="store_true", help="skip the short-horizon check")
    p.add_argument("--skip-shard", action="store_true", help="skip the HDF5 shard pipeline timing")
    p.add_argument("--seed", type=int, default=0, help="base seed of the trajectories (writer's seed stream)")
    add_common_args(p, "datagen")
    args = p.parse_args(argv)
    check_common_args(p, args)
    if args.pde is not None:
        args.pdes = [args.pde]
    if args.n_batch is None:
        args.n_batch = 2048 if torch.device(args.device).type == "cuda" else 512
    if args.repeat <= 0:
        p.error("--repeat must be positive")
    for name in ("n_batch", "n_ref", "n_check", "n_shard"):
        v = getattr(args, name)
        if v is not None and (v < 0 or (v == 0 and name in ("n_batch", "n_shard"))):
            p.error(f"--{name.replace('_', '-')} must be {'positive' if name in ('n_batch', 'n_shard') else '>= 0'}")
    if args.short_only and args.skip_short:
        p.error("--short-only and --skip-short leave nothing to run")
    args.ref_timeout = args.ref_timeout or None
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark for every requested PDE and write the reports (``--pde ns2d``: :func:`bench_ns2d.main`)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--pde")
    if pre.parse_known_args(argv)[0].pde == "ns2d":
        import bench_ns2d

        bench_ns2d.main(argv, script="scripts/bench_datagen.py")
        return
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else ["scripts/bench_datagen.py", *argv])])
    report: dict[str, Any] = {
        "tag": args.tag,
        "date_utc": utc_now(),
        "command": command,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "radau": {"method": "Radau", "rtol": RTOL, "atol": ATOL, "timeout_s": args.ref_timeout},
        "machine": machine_info(args.device),
        "notes": NOTES,
    }
    results: dict[str, Any] = {}
    print(
        f"bench_datagen on {report['machine']['device_name']} ({args.device}), n_batch={args.n_batch}, "
        f"{torch.get_num_threads()} torch threads",
        flush=True,
    )
    load = report["machine"]["load_average_start"]
    if load and load[0] > 0.5:
        print(
            f"warning: load average {load[0]:.2f} at start: other processes compete for the CPU and skew the "
            f"timings (2-thread torch runs were seen to slow down 100x on a busy 2-core machine; "
            f"consider --threads 1 or a quiet machine)",
            flush=True,
        )
    t0 = time.perf_counter()
    report["ceilings"] = ceilings(args.device, seconds=args.ceiling_seconds)

    def write() -> tuple[Path, Path]:
        return write_report(args.out, "datagen", args.tag, {**report, "results": results}, markdown(results, report))

    for pde in args.pdes:
        print(f"[{pde}]", flush=True)
        results[pde] = bench_pde(pde, args, args.device)
        report["total_seconds"] = time.perf_counter() - t0
        write()
    print_tables(results, report)
    json_path, md_path = write()
    print(f"total {report['total_seconds']:.0f} s; wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
