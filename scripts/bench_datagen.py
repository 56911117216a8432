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

``--pde ns2d`` benchmarks the 2D Navier-Stokes smoke generator instead (:func:`bench_ns2d`; report
``datagen_ns2d_<tag>.{json,md}``): trajectories/min at batch 1 and ``--n-batch`` from timed internal
steps (the step count per trajectory is fixed, so the cost extrapolates exactly in the number of steps),
one HDF5 shard of ``--n-shard`` full trajectories end to end, and, when PhiFlow is installed, the
PDEArena PhiFlow step (semi-Lagrangian, 64 steps of 1.5 per trajectory) on the same machine:

    python scripts/bench_datagen.py --pde ns2d --device cpu --threads 1 --n-batch 8 --n-shard 2 --tag cpu
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import shlex
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The Radau baseline factorises small dense matrices (256 x 256): threaded BLAS only adds overhead there,
# and on a busy 2-core machine it made a KS solve >10x slower. The baseline therefore runs on one core
# unless the caller sets OPENBLAS_NUM_THREADS (this must happen before numpy/scipy load OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import hydra
import numpy as np
import scipy
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from data_gen.reference import reference_solve
from data_gen.solvers import SOLVERS, PeriodicGenerator1D
from data_gen.verify import rel_l2, short_horizon, sync
from data_gen.writer import (
    GenerationError,
    generate_shard_data,
    generation_key,
    generator_version,
    trajectory_seed,
    write_shard,
)
from ssl_pde import CONFIG_DIR
from ssl_pde.core.cli import UserError, resolve_device
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
#: The periodic 1D PDEs of the ETDRK4/Radau benchmark (ns2d has its own, :func:`bench_ns2d`).
PDES_1D = [name for name, cls in SOLVERS.items() if issubclass(cls, PeriodicGenerator1D)]
NOTES = [
    "Radau = LPSDA baseline: scipy solve_ivp(method='Radau', rtol=atol=1e-9), method of lines, one trajectory "
    "at a time on the CPU; ETDRK4 = this project's batched solver (float64, 2/3 dealiasing) on the given device.",
    "Full setting: ETDRK4 runs on the config's solver grid (2048 points for Burgers, 512 for KdV) and stores every "
    "k-th point; Radau runs on the 256-point stored grid as LPSDA does, so ETDRK4 does more work per trajectory.",
    "Full-horizon rel. L2 (stored grid, stored frames, float32 storage) is not an accuracy measure: the solvers use "
    "different grids, and over the long horizon of the chaotic KS (and KdV) chaos amplifies any difference "
    "exponentially, so it can be large. Accuracy is checked on the short horizon instead, where both solvers use "
    "the same grid and trajectories have not decorrelated.",
    "Burgers: Radau on the 256-point stored grid cannot resolve the shocks of small-viscosity trajectories and may "
    "fail ('Required step size is less than spacing between numbers'); failures are counted in 'ok/n'. With few "
    "--n-ref trajectories the Burgers Radau rate depends strongly on their viscosities (listed in the JSON).",
    "Short horizon: Burgers uses solver_nx=512 for both solvers (Radau's dense Jacobian makes 2048 points very "
    "slow); both rates in that table are for this setting.",
    "Radau runs on one core (OPENBLAS_NUM_THREADS=1 unless set); one Radau process per core would multiply its "
    "rate by at most the core count: 'vs Radau on all cores' divides the speed-up by the usable cores.",
    "Rates are wall clock; ETDRK4 rates are for one batch of --n-batch trajectories after a warm-up (GPU "
    "synchronised; fastest of --repeat runs); the HDF5 column times generate_shard_data + write_shard of one "
    "shard (seed derivation, rejection/replacement, float32 conversion, lzf-compressed write); Radau rates count "
    "successful solves only (failures and timeouts are listed in the JSON).",
]


# ---------------------------------------------------------------------------------------------- helpers
class RefTimeout(RuntimeError):
    """A Radau solve ran past ``--ref-timeout``."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RefTimeout` in the block after ``seconds`` (POSIX main thread only; else no limit)."""
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _raise(_signum: int, _frame: object) -> None:
        raise RefTimeout(f"timed out after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)


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


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """Run ``fn`` and return its result and wall-clock seconds, synchronising the device around it."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def timed_best(fn: Callable[[], Any], device: str, repeat: int) -> tuple[Any, float, list[float]]:
    """Run ``fn`` ``repeat`` times: the last result, the fastest wall-clock seconds and all of them."""
    out, times = None, []
    for _ in range(max(1, repeat)):
        out, sec = timed(fn, device)
        times.append(sec)
    return out, min(times), times


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


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where unsupported): other work skews the timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` or None when either is missing."""
    return a / b if a is not None and b else None


def error_record(e: BaseException) -> dict[str, str]:
    """An exception as a JSON-friendly record."""
    return {"error": f"{type(e).__name__}: {' '.join(str(e).split())}"}


# ---------------------------------------------------------------------------------------------- sections
def bench_full(gen: PeriodicGenerator1D, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Throughput at the config's full setting, and the Radau baseline on the stored grid."""
    seeds = shard_seeds(args.seed, args.n_batch)
    warm_up(gen, seeds, device)
    batch, sec, times = timed_best(lambda: gen.generate(seeds, device), device, args.repeat)
    rejected = [r for r in batch.reasons if r]
    ours = {
        "n": len(seeds),
        "seconds": sec,
        "seconds_all": times,
        "traj_per_s": len(seeds) / sec,
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


def bench_shard(gen: PeriodicGenerator1D, cfg: DictConfig, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Generate and write one HDF5 shard of ``--n-shard`` trajectories into a temporary directory."""
    n = args.n_shard or args.n_batch
    solver_cfg = OmegaConf.to_container(cfg.solver, resolve=True)
    key = generation_key(solver_cfg, args.seed, SPLIT, 0, n)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    warm_up(gen, shard_seeds(args.seed, min(n, args.n_batch)), device)
    with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
        path = shard_path(tmp, gen.pde, SPLIT, 0)
        path.parent.mkdir(parents=True)
        sync(device)
        t0 = time.perf_counter()
        data, seeds, rejections = generate_shard_data(
            gen, args.seed, SPLIT, 0, n, args.n_batch, device=device, max_reject_fraction=float(cfg.max_reject_fraction)
        )
        t1 = time.perf_counter()
        write_shard(path, data, seeds, gen, SPLIT, key, config_yaml=config_yaml, rejections=rejections)
        t2 = time.perf_counter()
        size = path.stat().st_size
    out = {
        "n": n,
        "batch_size": args.n_batch,
        "seconds_generate": t1 - t0,
        "seconds_write": t2 - t1,
        "seconds": t2 - t0,
        "traj_per_s": n / (t2 - t0),
        "n_rejected": int(sum(rejections.values())),
        "file_bytes": size,
    }
    print(
        f"    shard pipeline: {n} trajectories in {t2 - t0:.2f} s (write {t2 - t1:.2f} s) = "
        f"{out['traj_per_s']:.2f} traj/s, {size / 2**20:.1f} MiB",
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


# ---------------------------------------------------------------------------------------------- output
def machine_info(device: str) -> dict[str, Any]:
    """Platform, CPU, library versions and accelerator of this run."""
    cpu_name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_name = line.split(":", 1)[1].strip()
                break
    dev = torch.device(device)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_name,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_start": load_average(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "generator_version": generator_version(),
    }


def fmt(v: float | None, spec: str = ".3g") -> str:
    """A number for the tables, "-" when missing."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def fmt_speedup(r: dict[str, Any]) -> str:
    """Speed-up over serial Radau, and over Radau run on every usable core in brackets."""
    if not r.get("speedup"):
        return "-"

    def x(v: float) -> str:
        return f"{v:.0f}x" if v >= 10 else f"{v:.2g}x"

    return f"{x(r['speedup'])} ({x(r['speedup_vs_radau_all_cores'])})"


def fmt_radau(r: dict[str, Any] | None) -> str:
    """Radau rate with the count of successful solves."""
    if not r:
        return "-"
    return f"{fmt(r['traj_per_s'])} ({r['n_ok']}/{r['n']})"


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """Headers and rows of the full-setting and short-horizon tables."""
    cores = next(iter(results.values()), {}).get("usable_cores", "all")
    speed = f"speed-up (vs Radau on {cores} cores)"
    full_head = [
        "PDE",
        "grid ETDRK4/Radau",
        "frames (of)",
        "ETDRK4 traj/s",
        "ETDRK4+HDF5 traj/s",
        "Radau traj/s (ok/n)",
        speed,
        "rel. L2 full horizon (med / max)",
    ]
    short_head = [
        "PDE",
        "horizon",
        "grid",
        "ETDRK4 traj/s",
        "Radau traj/s (ok/n)",
        speed,
        "rel. L2 median",
        "rel. L2 max",
    ]
    full_rows, short_rows = [], []
    for pde, r in results.items():
        s = r["setting"]
        full = r.get("full", {})
        shard = r.get("shard", {})
        if "full" in r or "shard" in r:
            radau = full.get("radau")
            rel = f"{fmt(radau['rel_l2_median'], '.2e')} / {fmt(radau['rel_l2_max'], '.2e')}" if radau else "-"
            if "error" in full:
                rel = "failed: " + full["error"][:60]
            full_rows.append(
                [
                    pde,
                    f"{s['solver_nx']}/{s['nx']}",
                    f"{s['nt']} ({s['nt_total']})",
                    fmt(full.get("etdrk4", {}).get("traj_per_s")),
                    fmt(shard.get("traj_per_s")),
                    fmt_radau(radau),
                    fmt_speedup(full),
                    rel,
                ]
            )
        sh = r.get("short")
        if sh is not None:
            if "error" in sh:
                short_rows.append([pde, "-", "-", "failed: " + sh["error"][:60], "-", "-", "-", "-"])
                continue
            radau = sh.get("radau")
            short_rows.append(
                [
                    pde,
                    f"t <= {sh['t_end']:g}, {sh['nt']} frames",
                    str(sh["solver_nx"]),
                    fmt(sh["etdrk4"]["traj_per_s"]),
                    fmt_radau(radau),
                    fmt_speedup(sh),
                    fmt(radau and radau["rel_l2_median"], ".2e"),
                    fmt(radau and radau["rel_l2_max"], ".2e"),
                ]
            )
    return full_head, full_rows, short_head, short_rows


def print_tables(results: dict[str, Any], report: dict[str, Any]) -> None:
    """Rich tables of both settings, and the notes."""
    console = Console(width=None if sys.stdout.isatty() else 180)
    full_head, full_rows, short_head, short_rows = table_rows(results)
    info = report["machine"]
    title = f"{report['tag']}: {info['device_name']} ({info['device']}), n_batch={report['args']['n_batch']}"
    for name, head, rows in (
        ("Full LPSDA setting", full_head, full_rows),
        ("Short-horizon accuracy check", short_head, short_rows),
    ):
        if not rows:
            continue
        table = Table(title=f"{name} - {title}")
        for h in head:
            table.add_column(h, justify="left" if h in ("PDE", "horizon") else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for note in NOTES:
        console.print(f"- {note}", highlight=False)


def markdown(results: dict[str, Any], report: dict[str, Any]) -> str:
    """The report as markdown: tables, notes, machine, how to rerun."""
    full_head, full_rows, short_head, short_rows = table_rows(results)
    info = report["machine"]
    lines = [
        f"# Data-generation benchmark: `{report['tag']}`",
        "",
        f"{report['date_utc']} on {info['device_name']} (`{info['device']}`), {info['cpu_count']} CPUs "
        f"({info['torch_threads']} torch threads), torch {info['torch']}, scipy {info['scipy']}, "
        f"{info['platform']}; ssl-pde {info['generator_version']}. Batched solver: {report['args']['n_batch']} "
        f"trajectories per batch; Radau: {report['args']['n_ref']} (full) / {report['args']['n_check']} "
        f"(short) trajectories, one at a time.",
        "",
    ]
    for name, head, rows in (
        ("Full LPSDA setting", full_head, full_rows),
        ("Short-horizon accuracy check", short_head, short_rows),
    ):
        if not rows:
            continue
        lines += [f"## {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        lines.append("")
    lines += ["## Notes", ""] + [f"- {n}" for n in NOTES] + [""]
    lines += [
        "## How to rerun",
        "",
        "```bash",
        report["command"],
        "```",
        "",
        f"Raw numbers: `datagen_{report['tag']}.json`.",
        "",
    ]
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write the JSON and markdown reports (atomically, so a partial run never leaves half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"datagen_{report['tag']}.json", out / f"datagen_{report['tag']}.md"
    for path, text in (
        (json_path, json.dumps({**report, "results": results}, indent=2) + "\n"),
        (md_path, markdown(results, report)),
    ):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return json_path, md_path


# ---------------------------------------------------------------------------------------------- ns2d
def time_ns2d_steps(gen, seeds: np.ndarray, steps: int, device: str) -> float:
    """Seconds per internal step of a batch (the generation step size; a short run from rest, warmed up)."""
    dt_store = float(gen.stored_times(gen.sample_params(seeds[:1]))[1][0])
    dt = dt_store / gen.substeps(dt_store)
    probe = gen.with_overrides(t_start=0.0, t_end=steps * dt, nt=2)
    params = probe.sample_params(seeds)
    probe.solve(params, device, substeps=2)  # warm-up (allocator, FFT plans, kernels)
    _, sec = timed(lambda: probe.solve(params, device, substeps=steps), device)
    return sec / steps


def phiflow_pdearena_step_seconds(steps: int, nx: int, length: float, buoyancy: float) -> dict[str, Any]:
    """Seconds per step of PDEArena's PhiFlow smoke step (dt = 1.5, :func:`data_gen.reference_ns2d.phiflow_smoke`
    from PDEArena's own noise), one trajectory, after one untimed warm-up step.

    Float64 with a CG pressure solve to 1e-5 (in float32, PhiFlow 3's default direct solve rejects the
    singular Neumann matrix and CG to 1e-5 breaks down).
    """
    import phi  # optional dependency, only for this comparison

    from data_gen.reference_ns2d import phiflow_smoke

    _, times = phiflow_smoke(None, buoyancy, 1.5, steps + 1, nx, length, tol=1e-5, method="CG")
    return {
        "phiflow": phi.__version__,
        "steps_timed": steps,
        "seconds_per_step": float(np.mean(times[1:])),
        "all": times,
    }


def bench_ns2d(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Rates of the ns2d generator at batch 1 and ``--n-batch``, one shard end to end, and PhiFlow's step."""
    gen, cfg = load_solver("ns2d")
    seeds = shard_seeds(args.seed, max(args.n_batch, 1))
    total = gen.total_steps(seeds[:1])
    res: dict[str, Any] = {
        "solver_config": OmegaConf.to_container(cfg.solver, resolve=True),
        "steps_per_trajectory": total,
        "load_average_start": load_average(),
        "batches": {},
    }
    for b in sorted({1, args.n_batch}):
        sec = time_ns2d_steps(gen, seeds[:b], args.ns2d_steps, device)
        traj_min = 60.0 * b / (sec * total)
        res["batches"][b] = {"seconds_per_step": sec, "steps_timed": args.ns2d_steps, "traj_per_min": traj_min}
        print(f"    batch {b}: {sec * 1e3:.1f} ms per step -> {traj_min:.2f} traj/min (extrapolated)", flush=True)
    if args.n_shard:
        n = args.n_shard
        solver_cfg = OmegaConf.to_container(cfg.solver, resolve=True)
        with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
            path = shard_path(tmp, "ns2d", SPLIT, 0)
            path.parent.mkdir(parents=True)
            sync(device)
            t0 = time.perf_counter()
            data, sds, rej = generate_shard_data(
                gen,
                args.seed,
                SPLIT,
                0,
                n,
                min(n, args.n_batch),
                device=device,
                max_reject_fraction=float(cfg.max_reject_fraction),
            )
            t1 = time.perf_counter()
            key = generation_key(solver_cfg, args.seed, SPLIT, 0, n)
            write_shard(
                path, data, sds, gen, SPLIT, key, config_yaml=OmegaConf.to_yaml(cfg, resolve=True), rejections=rej
            )
            t2 = time.perf_counter()
            size = path.stat().st_size
        res["shard"] = {
            "n": n,
            "batch_size": min(n, args.n_batch),
            "seconds_generate": t1 - t0,
            "seconds_write": t2 - t1,
            "traj_per_min": 60.0 * n / (t2 - t0),
            "n_rejected": int(sum(rej.values())),
            "file_bytes": size,
            "max_cfl": float(data.diagnostics["cfl"].max()),
            "max_divergence": float(data.diagnostics["divergence"].max()),
            "buoyancy": data.params["buoyancy"].tolist(),
        }
        print(
            f"    shard: {n} full trajectories in {t2 - t0:.1f} s (write {t2 - t1:.2f} s) = "
            f"{res['shard']['traj_per_min']:.2f} traj/min, {size / 2**20:.1f} MiB",
            flush=True,
        )
    if args.phiflow_steps:
        try:
            pf = phiflow_pdearena_step_seconds(args.phiflow_steps, gen.nx, gen.length_x, 0.5)
            pf["traj_per_min"] = 60.0 / (64 * pf["seconds_per_step"])
            res["phiflow"] = pf
            print(f"    PhiFlow {pf['phiflow']}: {pf['seconds_per_step']:.2f} s per step (64 steps/trajectory)")
        except ImportError as e:
            res["phiflow"] = {"error": f"PhiFlow not installed ({e})"}
        except Exception as e:  # a PhiFlow solver failure must not lose the other measurements
            res["phiflow"] = error_record(e)
    res["load_average_end"] = load_average()
    return res


def markdown_ns2d(res: dict[str, Any], report: dict[str, Any]) -> str:
    """The ns2d report."""
    m = report["machine"]
    c = res["solver_config"]
    lines = [
        f"# Data-generation benchmark: ns2d, `{report['tag']}`",
        "",
        f"{report['date_utc']} on {m['device_name']} (`{m['device']}`), {m['cpu_count']} CPUs "
        f"({m['torch_threads']} torch threads), torch {m['torch']}; ssl-pde {m['generator_version']}. "
        f"Setting `configs/solver/ns2d.yaml`: {c['nx']} x {c['ny']} cells, {c['nt']} frames on "
        f"[{c['t_start']}, {c['t_end']}], dt_max {c['dt_max']}: **{res['steps_per_trajectory']} internal "
        "SSP-RK3 steps per trajectory** (3 projections each). Load average at start / end: "
        f"{res.get('load_average_start')} / {res.get('load_average_end')} (other jobs share the machine).",
        "",
        "| what | batch | seconds per step | trajectories / min | how |",
        "|---|---|---|---|---|",
    ]
    for b, r in res["batches"].items():
        lines.append(
            f"| ns2d generator | {b} | {r['seconds_per_step']:.4f} | {r['traj_per_min']:.2f} | "
            f"{r['steps_timed']} steps timed, x {res['steps_per_trajectory']} steps (extrapolated) |"
        )
    if "shard" in res:
        s = res["shard"]
        lines.append(
            f"| ns2d generator + HDF5 shard | {s['batch_size']} | - | {s['traj_per_min']:.2f} | "
            f"{s['n']} full trajectories measured end to end (write {s['seconds_write']:.2f} s, "
            f"{s['file_bytes'] / 2**20:.0f} MiB, max CFL {s['max_cfl']:.2f}, max div {s['max_divergence']:.1e}) |"
        )
    pf = res.get("phiflow", {})
    if "seconds_per_step" in pf:
        lines.append(
            f"| PhiFlow {pf['phiflow']} PDEArena step (numpy, float64, CG) | 1 | {pf['seconds_per_step']:.3f} | "
            f"{pf['traj_per_min']:.2f} | {pf['steps_timed']} steps timed, x 64 steps of dt = 1.5 (extrapolated) |"
        )
    elif pf:
        lines.append(f"| PhiFlow | - | - | - | {pf['error']} |")
    lines += [
        "",
        "## Notes",
        "",
        "- The step count per trajectory is fixed by the configuration (no adaptive stepping) and a step's cost "
        "does not depend on the flow, so rates from timed steps extrapolate exactly in the number of steps; the "
        "shard row checks the extrapolation with complete trajectories (seed derivation, float32 conversion, "
        "lzf-compressed write included).",
        "- PhiFlow (PDEArena's generator) takes 64 steps of 1.5 per trajectory: CFL numbers far above 1 "
        "(velocities ~3 on cells of 0.25), first-order semi-Lagrangian advection; this generator takes "
        f"{res['steps_per_trajectory']} steps at CFL <= 1 with third-order Runge-Kutta and a third-order "
        "upwind-biased finite-volume advection, so it does about 65x more steps; the two rates measure cost, "
        "not equal accuracy.",
        "- The GPU path is the same code (`--device cuda`); it is not measured here.",
        "",
        "## How to rerun",
        "",
        "```bash",
        report["command"],
        "```",
        "",
        f"Raw numbers: `datagen_ns2d_{report['tag']}.json`.",
        "",
    ]
    return "\n".join(lines)


def main_ns2d(args: argparse.Namespace, command: str) -> None:
    """The ns2d benchmark and its report."""
    report: dict[str, Any] = {
        "tag": args.tag,
        "date_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(args.device),
    }
    print(f"bench_datagen ns2d on {report['machine']['device_name']} ({args.device})", flush=True)
    t0 = time.perf_counter()
    res = bench_ns2d(args, args.device)
    report["total_seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"datagen_ns2d_{args.tag}.json", args.out / f"datagen_ns2d_{args.tag}.md"
    json_path.write_text(json.dumps({**report, "results": res}, indent=2) + "\n")
    md_path.write_text(markdown_ns2d(res, report))
    print(markdown_ns2d(res, report))
    print(f"total {report['total_seconds']:.0f} s; wrote {json_path} and {md_path}")


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pdes", nargs="+", default=list(PDES_1D), choices=list(PDES_1D), help="1D PDEs to benchmark")
    p.add_argument(
        "--pde",
        choices=["ns2d", *PDES_1D],
        default=None,
        help="one PDE (ns2d: the 2D Navier-Stokes benchmark, its own report datagen_ns2d_<tag>)",
    )
    p.add_argument("--ns2d-steps", type=int, default=60, help="ns2d: timed internal steps per batch (default: 60)")
    p.add_argument("--phiflow-steps", type=int, default=5, help="ns2d: timed PhiFlow steps (default: 5; 0: skip)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument(
        "--n-batch",
        type=int,
        default=None,
        help="trajectories per batch of the batched solver (default: 512 on cpu, 2048 on cuda; ns2d: 8, 64)",
    )
    p.add_argument("--n-ref", type=int, default=2, help="Radau trajectories at the full setting (default: 2)")
    p.add_argument(
        "--n-check",
        type=int,
        default=4,
        help="trajectories of the short-horizon accuracy check (Radau rate too; default: 4)",
    )
    p.add_argument(
        "--n-shard", type=int, default=None, help="trajectories of the timed shard (default: --n-batch; ns2d: none)"
    )
    p.add_argument(
        "--ref-timeout",
        type=float,
        default=120.0,
        help="seconds per Radau trajectory before it is recorded as failed (0: no limit; default: 120)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for the batched solver (default: torch's, usually the core count)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed runs of the batched solver (full and short setting); the fastest counts (default: 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed of the trajectories (writer's seed stream)")
    p.add_argument("--short-only", action="store_true", help="only the short-horizon check (no full setting, shard)")
    p.add_argument("--skip-short", action="store_true", help="skip the short-horizon check")
    p.add_argument("--skip-shard", action="store_true", help="skip the HDF5 shard pipeline timing")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="output directory")
    p.add_argument("--tag", default=None, help="report name datagen_<tag>.{json,md} (default: device type)")
    args = p.parse_args(argv)
    try:
        args.device = str(resolve_device(args.device))
    except UserError as e:
        p.error(str(e))
    if args.threads is not None:
        if args.threads <= 0:
            p.error("--threads must be positive")
        torch.set_num_threads(args.threads)
    if args.pde is not None:
        args.pdes = [args.pde]
    if args.n_batch is None:
        cuda = torch.device(args.device).type == "cuda"
        args.n_batch = (64 if cuda else 8) if args.pdes == ["ns2d"] else (2048 if cuda else 512)
    if args.repeat <= 0:
        p.error("--repeat must be positive")
    for name in ("n_batch", "n_ref", "n_check", "n_shard"):
        v = getattr(args, name)
        if v is not None and (v < 0 or (v == 0 and name in ("n_batch", "n_shard"))):
            p.error(f"--{name.replace('_', '-')} must be {'positive' if name in ('n_batch', 'n_shard') else '>= 0'}")
    if args.short_only and args.skip_short:
        p.error("--short-only and --skip-short leave nothing to run")
    if args.tag is None:
        args.tag = torch.device(args.device).type
    if not args.tag or any(c in args.tag for c in "/\\ "):
        p.error(f"--tag {args.tag!r} must be a plain name")
    args.ref_timeout = args.ref_timeout or None
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark for every requested PDE and write the reports."""
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else ["scripts/bench_datagen.py", *argv])])
    if args.pdes == ["ns2d"]:
        main_ns2d(args, command)
        return
    report: dict[str, Any] = {
        "tag": args.tag,
        "date_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "radau": {"method": "Radau", "rtol": RTOL, "atol": ATOL, "timeout_s": args.ref_timeout},
        "machine": machine_info(args.device),
        "notes": NOTES,
    }
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
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
    for pde in args.pdes:
        print(f"[{pde}]", flush=True)
        results[pde] = bench_pde(pde, args, args.device)
        report["total_seconds"] = time.perf_counter() - t0
        write_outputs(results, report, args.out)
    print_tables(results, report)
    json_path, md_path = write_outputs(results, report, args.out)
    print(f"total {report['total_seconds']:.0f} s; wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
