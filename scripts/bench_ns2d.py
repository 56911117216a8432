#!/usr/bin/env python
"""Benchmark of the 2D Navier-Stokes (ns2d) smoke generator, with PDEArena's PhiFlow step on the same machine.

Trajectories/min at batch 1 and ``--n-batch`` from timed internal steps (the step count per trajectory is fixed,
so the cost extrapolates exactly in the number of steps), one HDF5 shard of ``--n-shard`` full trajectories end
to end, and, when PhiFlow is installed, the PDEArena PhiFlow step (semi-Lagrangian, 64 steps of 1.5 per
trajectory). The machine ceilings (:func:`benchlib.ceilings`) are measured in the same run. Writes
``<out>/datagen_ns2d_<tag>.{json,md}``.

    python scripts/bench_ns2d.py --device cpu --threads 1 --n-batch 8 --n-shard 2 --tag cpu
    python scripts/bench_ns2d.py --device cuda --n-batch 512 --phiflow-steps 0 --tag cuda
    python scripts/bench_ns2d.py --threads 1 --n-batch 2 --ns2d-steps 2 --phiflow-steps 0 --tag smoketest --out /tmp/b

``python scripts/bench_datagen.py --pde ns2d ...`` runs the same (this module's :func:`main`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as bench_datagen: set before numpy loads OpenBLAS
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, also when this file is imported by path

import numpy as np
from bench_datagen import load_solver, shard_seeds, time_shard
from benchlib import (
    add_common_args,
    ceilings,
    ceilings_line,
    check_common_args,
    error_record,
    fmt,
    fraction,
    load_average,
    machine_info,
    ratio,
    rerun_section,
    timed,
    utc_now,
    write_report,
)
from omegaconf import OmegaConf

from data_gen.solvers import NS2DGenerator

#: The step variants measured (name -> solver overrides): the
#: first is today's algorithm (eager, float64, FFT projection); the last two are what ``compile: auto`` and
#: ``advection_dtype`` choose between at the generation setting.
VARIANTS: dict[str, dict[str, Any]] = {
    "eager-fft": {"compile": False, "poisson_method": "fft"},
    "eager": {"compile": False},
    "compiled": {"compile": True},
    "compiled-f32": {"compile": True, "advection_dtype": "float32"},
}
VARIANT_DOC = {
    "eager-fft": "eager, float64, FFT projection (the algorithm of the 'today' row, in this code)",
    "eager": "eager, float64, dense-DCT projection",
    "compiled": "torch.compile, float64, dense-DCT projection (`compile: auto` at this size)",
    "compiled-f32": "torch.compile, float32 right-hand side, float64 projection (`advection_dtype: float32`)",
}


#: Float64 field arrays a step must move (:func:`ns2d_step_bytes`): 20 in stage 1, 23 in stages 2 and 3.
NS2D_ARRAYS_PER_STEP = 20 + 23 + 23


def ns2d_step_bytes(batch: int, nx: int, ny: int) -> int:
    """Compulsory memory traffic of one SSP-RK3 step of the ns2d solver, fixed before any optimisation.

    Counted in float64 arrays of one field (``batch x nx x ny`` values; the face arrays' extra row is ignored).
    Per stage: the stage input read (3 fields: smoke, vx, vy) and, in stages 2 and 3, the step's initial state
    read (3); the unprojected stage result written (3); the projection's divergence written (1), its two forward
    and two inverse transforms each reading and writing one array (8), then the potential and the two velocity
    fields read and the corrected velocities written (1 + 2 + 2). 20 + 23 + 23 = 66 arrays per step. A faster
    implementation (fusion, single precision) changes the time, never this count.
    """
    return NS2D_ARRAYS_PER_STEP * batch * nx * ny * 8


def time_ns2d_steps(gen: NS2DGenerator, seeds: np.ndarray, steps: int, device: str) -> dict[str, float]:
    """Seconds per internal step of a batch (the generation step size; a short run from rest, warmed up),
    and the first solve's seconds (compilation included when ``gen`` compiles)."""
    dt_store = float(gen.stored_times(gen.sample_params(seeds[:1]))[1][0])
    dt = dt_store / gen.substeps(dt_store)
    probe = gen.with_overrides(t_start=0.0, t_end=steps * dt, nt=2)
    params = probe.sample_params(seeds)
    _, first = timed(lambda: probe.solve(params, device, substeps=2), device)  # warm-up (and compilation)
    _, sec = timed(lambda: probe.solve(params, device, substeps=steps), device)
    return {"seconds_per_step": sec / steps, "first_solve_seconds": first}


#: Runs in a subprocess on an exported tree of another commit (``--baseline-rev``): its generator's step time.
BASELINE_SNIPPET = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from data_gen.solvers import NS2DGenerator
a = json.loads(sys.argv[3])
gen = NS2DGenerator(**a["solver"])
seeds = np.array(a["seeds"], dtype=np.int64)
dt_store = float(gen.stored_times(gen.sample_params(seeds[:1]))[1][0])
dt = dt_store / gen.substeps(dt_store)
probe = gen.with_overrides(t_start=0.0, t_end=a["steps"] * dt, nt=2)
params = probe.sample_params(seeds)
probe.solve(params, a["device"], substeps=2)
t0 = time.perf_counter()
probe.solve(params, a["device"], substeps=a["steps"])
print(json.dumps({"seconds_per_step": (time.perf_counter() - t0) / a["steps"]}))
"""


def time_baseline(rev: str, solver: dict[str, Any], seeds: np.ndarray, steps: int, device: str) -> dict[str, Any]:
    """Seconds per step of commit ``rev``'s ns2d generator, timed in a subprocess on ``git archive`` of that commit
    (the same settings, seeds, thread count and step count as the other rows)."""
    import json
    import subprocess
    import tarfile
    import tempfile

    import torch

    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short=12", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench_ns2d_base_") as tmp:
        tar = Path(tmp) / "tree.tar"
        subprocess.run(["git", "-C", str(repo), "archive", "-o", str(tar), commit, "data_gen", "ssl_pde"], check=True)
        with tarfile.open(tar) as tf:  # the "data" filter where this Python has it (3.11.4 and later)
            tf.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        keys = ("compile", "advection_dtype", "poisson_method", "_target_")
        arg = {"solver": {k: v for k, v in solver.items() if k not in keys}, "seeds": seeds.tolist()}
        arg |= {"steps": steps, "device": device}
        out = subprocess.run(
            [sys.executable, "-c", BASELINE_SNIPPET, tmp, str(torch.get_num_threads()), json.dumps(arg)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": tmp},
        )
    return {"commit": commit, **json.loads(out.stdout.strip().splitlines()[-1])}


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


def bench_ns2d(args: argparse.Namespace, device: str, ceil: dict[str, Any]) -> dict[str, Any]:
    """Rates of the ns2d generator's step variants at batch 1 and ``--n-batch`` (today's commit among them),
    one shard end to end, and PhiFlow's step; ``ceil`` the machine ceilings of this run."""
    gen, cfg = load_solver("ns2d")
    seeds = shard_seeds(args.seed, max(args.n_batch, 1))
    total = gen.total_steps(seeds[:1])
    res: dict[str, Any] = {
        "solver_config": OmegaConf.to_container(cfg.solver, resolve=True),
        "steps_per_trajectory": total,
        "load_average_start": load_average(),
        "batches": {},
    }
    solver = res["solver_config"]
    for b in sorted({1, args.n_batch}):
        rows: dict[str, Any] = {}
        bytes_step = ns2d_step_bytes(b, gen.nx, gen.ny)
        if args.baseline_rev:
            try:
                rows["today"] = time_baseline(args.baseline_rev, solver, seeds[:b], args.ns2d_steps, device)
            except Exception as e:  # a missing git or commit must not lose the other measurements
                rows["today"] = error_record(e)
        for name in args.variants:
            v = VARIANTS[name]
            rows[name] = time_ns2d_steps(gen.with_overrides(**v), seeds[:b], args.ns2d_steps, device)
        base = rows.get("today", {}).get("seconds_per_step") or rows.get("eager-fft", {}).get("seconds_per_step")
        for name, r in rows.items():
            sec = r.get("seconds_per_step")
            if sec is None:
                continue
            r["traj_per_min"] = 60.0 * b / (sec * total)
            r["speedup_vs_today"] = ratio(base, sec)
            r["bytes_per_s"] = bytes_step / sec
            r["fraction_of_triad"] = fraction(bytes_step / sec, ceil.get("triad_bytes_per_s"))
            print(
                f"    batch {b} {name}: {sec * 1e3:.1f} ms per step -> {r['traj_per_min']:.2f} traj/min, "
                f"x{fmt(r['speedup_vs_today'], '.2f')} vs today",
                flush=True,
            )
        res["batches"][b] = {"steps_timed": args.ns2d_steps, "bytes_per_step": bytes_step, "variants": rows}
    if args.n_shard:
        shard, data = time_shard(gen, cfg, args.seed, args.n_shard, min(args.n_shard, args.n_batch), device)
        res["shard"] = {
            **shard,
            "traj_per_min": 60.0 * shard["traj_per_s"],
            "max_cfl": float(data.diagnostics["cfl"].max()),
            "max_divergence": float(data.diagnostics["divergence"].max()),
            "buoyancy": data.params["buoyancy"].tolist(),
        }
        print(
            f"    shard: {shard['n']} full trajectories in {shard['seconds']:.1f} s (write "
            f"{shard['seconds_write']:.2f} s) = {res['shard']['traj_per_min']:.2f} traj/min, "
            f"{shard['file_bytes'] / 2**20:.1f} MiB",
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
        *([ceilings_line(report["ceilings"]), ""] if report.get("ceilings") else []),
        "| step | batch | seconds per step | trajectories / min | vs today | first solve (s) | "
        "GB/s (compulsory) | of triad |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b, r in res["batches"].items():
        for name, v in r["variants"].items():
            what = f"today (commit `{v['commit']}`, eager float64 FFT)" if name == "today" and "commit" in v else name
            if "error" in v:
                lines.append(f"| {what} | {b} | - | - | - | - | - | {v['error']} |")
                continue
            frac = v.get("fraction_of_triad")
            lines.append(
                f"| {what} | {b} | {v['seconds_per_step']:.4f} | {v['traj_per_min']:.2f} | "
                f"{fmt(v.get('speedup_vs_today'), '.2f')}x | {fmt(v.get('first_solve_seconds'), '.1f')} | "
                f"{v['bytes_per_s'] / 1e9:.2f} | {fmt(100 * frac if frac else None, '.1f')} % |"
            )
    first = next(iter(res["batches"].values()))
    lines += [
        "",
        "Rows: " + "; ".join(f"`{k}` {v}" for k, v in VARIANT_DOC.items()) + ". Seconds per step from "
        f"{first['steps_timed']} timed steps of the generation step size, times "
        f"{res['steps_per_trajectory']} steps per trajectory (extrapolated). 'First solve' is the warm-up "
        "solve of 2 steps: for compiled rows it includes the compilation (cached by torch across processes).",
        "GB/s (compulsory): the step's compulsory memory traffic (`ns2d_step_bytes`: 66 float64 field arrays per "
        "SSP-RK3 step, fixed before optimising) over its time; 'of triad' is that as a fraction of the streaming "
        "bandwidth measured above.",
        "",
    ]
    if "shard" in res or res.get("phiflow"):
        lines += ["| what | batch | seconds per step | trajectories / min | how |", "|---|---|---|---|---|"]
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
        "- The fraction of the triad bandwidth uses the compulsory byte count, not measured traffic: at batch 8 the "
        "working set (a few MiB) partly stays in cache, and the limiter's branches and the dense-DCT matmuls make "
        "parts of the step compute-bound, so the fraction says how far the step is from streaming its arrays "
        "once, not which unit limits it.",
        "",
        *rerun_section(report["command"], f"datagen_ns2d_{report['tag']}.json"),
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--pde ns2d`` is accepted, for ``bench_datagen.py --pde ns2d``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pde", choices=["ns2d"], default="ns2d", help=argparse.SUPPRESS)
    p.add_argument("--n-batch", type=int, default=None, help="trajectories per batch (default: 8 on cpu, 64 on cuda)")
    p.add_argument("--n-shard", type=int, default=None, help="trajectories of the timed HDF5 shard (default: none)")
    p.add_argument("--ns2d-steps", type=int, default=60, help="timed internal steps per batch (default: 60)")
    p.add_argument("--phiflow-steps", type=int, default=5, help="timed PhiFlow steps (default: 5; 0: skip)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the trajectories (writer's seed stream)")
    p.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="step variants to time (default: all): " + "; ".join(f"{k}: {v}" for k, v in VARIANT_DOC.items()),
    )
    p.add_argument(
        "--baseline-rev",
        default="191845d",
        help="commit whose generator is timed as 'today' in a subprocess, same settings ('' to skip; default: "
        "191845d, the commit the performance issue measures against)",
    )
    add_common_args(p, "datagen_ns2d")
    args = p.parse_args(argv)
    check_common_args(p, args)
    if args.n_batch is None:
        args.n_batch = 64 if args.device.startswith("cuda") else 8
    for name in ("n_batch", "n_shard", "ns2d_steps"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.phiflow_steps < 0:
        p.error("--phiflow-steps must be >= 0")
    return args


def main(argv: list[str] | None = None, script: str = "scripts/bench_ns2d.py") -> None:
    """The ns2d benchmark and its report (``script``: the command line's script when ``argv`` is given)."""
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [script, *argv])])
    report: dict[str, Any] = {
        "tag": args.tag,
        "date_utc": utc_now(),
        "command": command,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(args.device),
    }
    print(f"bench_ns2d on {report['machine']['device_name']} ({args.device})", flush=True)
    t0 = time.perf_counter()
    report["ceilings"] = ceilings(args.device, seconds=args.ceiling_seconds)
    res = bench_ns2d(args, args.device, report["ceilings"])
    report["total_seconds"] = time.perf_counter() - t0
    text = markdown_ns2d(res, report)
    json_path, md_path = write_report(args.out, "datagen_ns2d", args.tag, {**report, "results": res}, text)
    print(text)
    print(f"total {report['total_seconds']:.0f} s; wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
