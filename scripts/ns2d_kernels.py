"""Where the compiled ns2d step's time goes: the loops ``torch.compile`` generates for one SSP-RK3 step, the
arrays each loop reads or writes, and the step's time under other fusion settings, beside the machine's streaming
bandwidth measured in the same run.

    python scripts/ns2d_kernels.py --device cpu --threads 1 --batch 1 --tag cpu --out docs/benchmarks
    python scripts/ns2d_kernels.py --threads 1 --n 32 --steps 3 --repeat 1 --variants default --tag smoke --out /tmp/k

``scripts/bench_ns2d.py`` measures the step against the compulsory traffic fixed before optimising (66 field arrays
per step, :func:`bench_ns2d.ns2d_step_bytes`). This script reads the code the compiler generated for the step (the
CPU wrapper inductor writes: its fused C++ loops and the library calls between them) and counts, per loop call,
the sizes of the array arguments the loop is handed (a base buffer and a view into it that the loop also receives
are counted both), and per matmul its operands' and output's sizes (a broadcast operand once). This is not a
measurement of memory traffic: a loop may touch only part of an argument, read one twice, or find it in cache (at
128 x 128 one field is 130 KB). It says how many field-sized arrays the generated step passes around compared with
the 66 it must, and, with the profiler's split of the step time between the loops and the matmuls, where to look.
Fusion variants set inductor's thresholds for keeping an intermediate in memory instead of recomputing it
(``realize_reads_threshold`` and its CPU op-count limits): higher values inline more and recompute more. Step times
are reported as the median and the fastest of interleaved rounds.

The code parsed is inductor's CPU wrapper (``cpp_fused_*`` loops, ``extern_kernels.*`` calls); on a GPU the loops are
Triton kernels and the count is reported as unavailable; a wrapper with no loop found is reported as unparsed.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_ns2d import ns2d_step_bytes
from benchlib import (
    ceilings,
    ceilings_line,
    fmt,
    fraction,
    load_average,
    machine_info,
    rerun_section,
    sync,
    utc_now,
    write_report,
)

from data_gen.solvers.mac_grid import NS2DStepper, NSState, ssp_rk3_step
from ssl_pde.core.cli import resolve_device

#: Inductor settings of each fusion variant (``torch.compile(..., options=...)``).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "reads6": {"realize_reads_threshold": 6},
    "reads8": {"realize_reads_threshold": 8},
    "reads8-ops100": {
        "realize_reads_threshold": 8,
        "realize_cpu_opcount_threshold": 100,
        "realize_cpu_acc_reads_threshold": 24,
    },
}

_KERNEL_DEF = re.compile(r"^(cpp_fused\w*) = async_compile\.cpp_pybinding\(\[([^\]]*)\]", re.M)
_SHAPE = re.compile(r"(buf\d+) = (?:empty_strided_cpu|reinterpret_tensor)\((?:\w+, )?\(([\d, ]*)\)")
_REUSE = re.compile(r"(buf\d+) = (buf\d+); del")
_INPUT = re.compile(r"assert_size_stride\((arg\d+_\d+), \(([\d, ]*)\)")
_CALL = re.compile(r"^\s+(cpp_fused\w*)\(([^)]*)\)", re.M)
_EXTERN = re.compile(r"^\s+extern_kernels\.(\w+)\((.*)\)\s*$", re.M)
_VIEW = re.compile(r"reinterpret_tensor\((\w+), \(([\d, ]*)\), \(([\d, ]*)\)(?:, \d+)?\)")
_NAME = re.compile(r"\b(buf\d+|arg\d+_\d+)\b")
#: Library calls whose operands and output are counted (the projection's products).
MATMULS = ("mm", "bmm")


def _numel(shape: str) -> int:
    return math.prod(int(v) for v in shape.split(",") if v.strip())


def _stored(shape: str, stride: str) -> int:
    """Elements a view reads: its size without the dimensions it broadcasts (stride 0)."""
    dims = [int(v) for v in shape.split(",") if v.strip()]
    steps = [int(v) for v in stride.split(",") if v.strip()]
    return math.prod(d for d, st in zip(dims, steps, strict=True) if st != 0)


def parse_wrapper(code: str) -> dict[str, Any]:
    """The loops and library calls of one inductor CPU wrapper ``code`` (one compiled graph), in call order.

    Returns:
        ``kernels``: name -> number of pointer arguments of its C++ signature; ``calls``: dicts with ``kind``
        (``loop``, or the library call's name, e.g. ``mm``), ``name``, ``arrays`` (the loop's arguments, or a
        matmul's operands and output) and ``elements`` (their total size; None when a size is unknown);
        ``unknown``: argument names with no recorded size and library calls that are not matmuls
        (``extern:<name>``), whose arrays are not counted.
    """
    kernels = {m.group(1): len([a for a in m.group(2).split(",") if a.strip()]) for m in _KERNEL_DEF.finditer(code)}
    sizes = {m.group(1): _numel(m.group(2)) for m in _INPUT.finditer(code)}
    for line in code.splitlines():  # allocations, views and reuses in program order
        if m := _SHAPE.search(line):
            sizes[m.group(1)] = _numel(m.group(2))
        elif (m := _REUSE.search(line)) and m.group(2) in sizes:
            sizes[m.group(1)] = sizes[m.group(2)]
    calls: list[dict[str, Any]] = []
    unknown: set[str] = set()
    events = [(m.start(), "loop", m) for m in _CALL.finditer(code) if m.group(1) in kernels]
    events += [(m.start(), m.group(1), m) for m in _EXTERN.finditer(code)]
    for _, kind, m in sorted(events, key=lambda e: e[0]):
        if kind == "loop":
            args = [a.strip() for a in m.group(2).split(",") if a.strip()]
            missing = [a for a in args if a not in sizes]
            unknown.update(missing)
            total = None if missing else sum(sizes[a] for a in args)
            calls.append({"kind": "loop", "name": m.group(1), "arrays": len(args), "elements": total})
        elif kind in MATMULS:
            text = m.group(2)
            views = [_stored(v.group(2), v.group(3)) for v in _VIEW.finditer(text)]
            names = _NAME.findall(_VIEW.sub("", text))
            missing = [a for a in names if a not in sizes]
            unknown.update(missing)
            total = None if missing else sum(views) + sum(sizes[a] for a in names)
            calls.append({"kind": kind, "name": kind, "arrays": len(views) + len(names), "elements": total})
        else:
            unknown.add(f"extern:{kind}")
    return {"kernels": kernels, "calls": calls, "unknown": sorted(unknown)}


def parse_wrappers(codes: list[str]) -> dict[str, Any]:
    """:func:`parse_wrapper` of each compiled graph's code (each has its own buffer and input names), joined."""
    parts = [parse_wrapper(c) for c in codes]
    return {
        "kernels": {k: v for p in parts for k, v in p["kernels"].items()},
        "calls": [c for p in parts for c in p["calls"]],
        "unknown": sorted({u for p in parts for u in p["unknown"]}),
    }


def _inputs(n: int, batch: int, device: torch.device) -> tuple[NS2DStepper, NSState]:
    """A stepper of the generation settings on an ``n x n`` box of 32 and a random divergent state (the
    projection makes it divergence-free after the first stage; the loops' cost does not depend on the values)."""
    g = torch.Generator().manual_seed(0)
    b = torch.full((batch,), 0.5, dtype=torch.float64, device=device)
    st = NS2DStepper(n, n, 32.0, 32.0, 0.01, b, compile=False)
    s = torch.rand(batch, n, n, generator=g, dtype=torch.float64)
    vx = 0.1 * torch.randn(batch, n + 1, n, generator=g, dtype=torch.float64)
    vy = 0.1 * torch.randn(batch, n, n + 1, generator=g, dtype=torch.float64)
    return st, NSState(s.to(device), vx.to(device), vy.to(device))


def generated_code(st: NS2DStepper, x: NSState, dt: float) -> list[str]:
    """The code inductor generates for one compiled step (compiled afresh: no cached graph is reused)."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    with torch._inductor.config.patch(fx_graph_cache=False):
        f = torch.compile(ssp_rk3_step)
        _, codes = run_and_get_code(f, *st._args(x, dt))
    torch._dynamo.reset()
    return codes


def time_variants(
    st: NS2DStepper, x: NSState, dt: float, names: list[str], *, steps: int, repeat: int, device: torch.device
) -> dict[str, Any]:
    """Per variant: first-call seconds (compilation, or loading torch's cached graph), the largest difference from
    the eager step, and the median and fastest of ``repeat`` rounds of ``steps`` steps (rounds interleaved across
    variants, so a change of load hits them alike)."""
    import time

    ref = st.eager_step(x, dt)
    fns, res = {}, {}
    for name in names:
        f = torch.compile(ssp_rk3_step, options=VARIANTS[name])
        sync(device)
        t0 = time.perf_counter()
        out = f(*st._args(x, dt))
        sync(device)
        diff = max(float((a - b).abs().max()) for a, b in zip(out, (ref.s, ref.vx, ref.vy), strict=True))
        fns[name] = f
        res[name] = {"options": VARIANTS[name], "compile_seconds": time.perf_counter() - t0, "max_diff": diff}
        print(f"  {name}: first call {res[name]['compile_seconds']:.1f} s, max |diff| vs eager {diff:.1e}", flush=True)
    rounds: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(max(1, repeat)):
        for name, f in fns.items():
            y = x
            sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                y = NSState(*f(*st._args(y, dt)))
            sync(device)
            rounds[name].append((time.perf_counter() - t0) / steps)
    for name in names:
        med, best = float(np.median(rounds[name])), min(rounds[name])
        res[name] |= {"seconds_per_step": med, "fastest_seconds_per_step": best, "rounds": rounds[name]}
        print(f"  {name}: {med * 1e3:.3f} ms per step (median of {repeat}; fastest {best * 1e3:.3f})", flush=True)
    return res


def profile_split(st: NS2DStepper, x: NSState, dt: float, steps: int) -> dict[str, float]:
    """Seconds per step in the library matmuls (``aten::mm``/``bmm``, the projection) and in everything else (the
    fused loops and the wrapper), from torch's profiler over ``steps`` compiled steps (default fusion)."""
    from torch.profiler import profile

    f = torch.compile(ssp_rk3_step)
    y = NSState(*f(*st._args(x, dt)))
    with profile() as prof:
        for _ in range(steps):
            y = NSState(*f(*st._args(y, dt)))
    ev = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ev) / 1e6 / steps
    mm = sum(e.self_cpu_time_total for e in ev if e.key in ("aten::mm", "aten::bmm")) / 1e6 / steps
    return {"seconds_per_step": total, "matmul_seconds_per_step": mm, "other_seconds_per_step": total - mm}


def summarise(parsed: dict[str, Any], n: int, batch: int) -> dict[str, Any]:
    """Per distinct loop/matmul: calls per step, arrays per call, elements; totals against the compulsory count."""
    field = batch * n * n
    rows: dict[str, dict[str, Any]] = {}
    for c in parsed["calls"]:
        r = rows.setdefault(c["name"], {"kind": c["kind"], "calls": 0, "arrays_per_call": c["arrays"], "elements": 0})
        r["calls"] += 1
        r["elements"] = None if r["elements"] is None or c["elements"] is None else r["elements"] + c["elements"]
    known = [c["elements"] for c in parsed["calls"]]
    total = None if any(e is None for e in known) else sum(known)
    compulsory = ns2d_step_bytes(batch, n, n)
    return {
        "loops": rows,
        "array_passes_per_step": None if total is None else total / field,
        "bytes_per_step": None if total is None else total * 8,
        "compulsory_bytes_per_step": compulsory,
        "ratio_to_compulsory": None if total is None else total * 8 / compulsory,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report."""
    m, r, a = report["machine"], report["results"], report["args"]
    s = r.get("summary")
    lines = [
        f"# Where the compiled ns2d step's time goes, `{report['tag']}`",
        "",
        f"{report['date_utc']} on {m['device_name']} (`{m['device']}`), {m['cpu_count']} CPUs "
        f"({m['torch_threads']} torch threads), torch {m['torch']}. One SSP-RK3 step (3 stages, a projection "
        f"each) of {a['batch']} trajectory(ies) on {a['n']} x {a['n']} cells, float64, dense-DCT projection. "
        f"Load average at start / end: {r['load_average_start']} / {r['load_average_end']}.",
        "",
        ceilings_line(report["ceilings"]),
        "",
    ]
    if s is None:
        lines += [f"Generated code not parsed: {r.get('code_error', 'no CPU wrapper')}.", ""]
    else:
        lines += [
            "## The generated step",
            "",
            "| loop or library call | kind | calls per step | arrays per call | field-sized arrays per step |",
            "|---|---|---|---|---|",
        ]
        field = a["batch"] * a["n"] ** 2
        for name, row in s["loops"].items():
            moved = "?" if row["elements"] is None else f"{row['elements'] / field:.1f}"
            short = name if len(name) <= 48 else name[:45] + "..."
            lines.append(f"| `{short}` | {row['kind']} | {row['calls']} | {row['arrays_per_call']} | {moved} |")
        per_step = s["array_passes_per_step"]
        lines += [
            "",
            f"Field-sized arrays the generated step hands its loops and matmuls (argument sizes over one field; not "
            f"measured traffic): **{fmt(per_step, '.0f')}** per step, against the compulsory **66** "
            f"(`scripts/bench_ns2d.py`): {fmt(s['ratio_to_compulsory'], '.2f')}x. Loops: "
            f"{sum(1 for x in s['loops'].values() if x['kind'] == 'loop')} distinct fused loops.",
            "",
        ]
    prof = r.get("profile")
    if prof:
        mm_rate = prof["matmul_flops_per_step"] / prof["matmul_seconds_per_step"]
        mm_share = prof["matmul_seconds_per_step"] / prof["seconds_per_step"]
        peak = report["ceilings"].get("matmul_flops_per_s", {}).get("float64")
        lines += [
            "## Where the step's time goes (torch profiler, default fusion)",
            "",
            f"{prof['seconds_per_step'] * 1e3:.3f} ms per step under the profiler: the projection's 12 matmuls "
            f"{prof['matmul_seconds_per_step'] * 1e3:.3f} ms ({100 * mm_share:.0f} %, "
            f"{mm_rate / 1e9:.1f} GFLOP/s = {fmt(100 * (fraction(mm_rate, peak) or float('nan')), '.0f')} % of the "
            f"float64 matmul ceiling at these small sizes), the fused loops and the wrapper "
            f"{prof['other_seconds_per_step'] * 1e3:.3f} ms "
            f"({100 * (1 - mm_share):.0f} %).",
            "",
        ]
    lines += [
        "## Fusion settings",
        "",
        "| variant | inductor options | ms per step, median (fastest) | median time vs default | "
        "compulsory GB/s at the median (of triad) | max diff vs eager |",
        "|---|---|---|---|---|---|",
    ]
    base = r["variants"].get("default", {}).get("seconds_per_step")
    tri = report["ceilings"].get("triad_bytes_per_s")
    compulsory = ns2d_step_bytes(a["batch"], a["n"], a["n"])
    for name, v in r["variants"].items():
        sec = v["seconds_per_step"]
        comp = compulsory / sec
        opts = ", ".join(f"{k}={w}" for k, w in v["options"].items()) or "-"
        lines.append(
            f"| {name} | {opts} | {sec * 1e3:.3f} ({v['fastest_seconds_per_step'] * 1e3:.3f}) | "
            f"{fmt(sec / base if base else None, '.2f')}x | "
            f"{comp / 1e9:.2f} ({fmt(100 * (fraction(comp, tri) or float('nan')), '.1f')} %) | {v['max_diff']:.1e} |"
        )
    lines += [
        "",
        "Times: median and fastest of the interleaved rounds; above 1.00x in the 'median time vs default' column is "
        "slower than the default. Each variant's first call compiled it or loaded torch's cached graph (seconds in the "
        "JSON).",
        "",
        *rerun_section(report["command"], f"ns2d_kernels_{report['tag']}.json"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--n", type=int, default=128, help="cells per axis (default 128, the generation grid)")
    p.add_argument("--batch", type=int, default=1, help="trajectories per step (default 1, the CPU default)")
    p.add_argument("--steps", type=int, default=30, help="steps per timed round (default 30)")
    p.add_argument("--repeat", type=int, default=6, help="timed rounds per variant (default 6)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--ceiling-seconds", type=float, default=3.0, help="budget of the ceilings (0: none)")
    p.add_argument("--tag", default="cpu")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = p.parse_args(argv)
    for name in ("n", "batch", "steps", "repeat"):
        if getattr(args, name) < 1 or (name == "n" and args.n < 8):
            p.error(f"--{name} must be at least {8 if name == 'n' else 1}, got {getattr(args, name)}")
    if args.threads is not None:
        if args.threads < 1:
            p.error(f"--threads must be positive, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    command = "python scripts/ns2d_kernels.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ceil = ceilings(device, ("float64",), args.ceiling_seconds)
    st, x = _inputs(args.n, args.batch, device)
    dt = 0.025 * 128 / args.n
    res: dict[str, Any] = {"load_average_start": load_average()}
    if device.type == "cpu":
        codes = generated_code(st, x, dt)
        parsed = parse_wrappers(codes)
        has_loops = any(c["kind"] == "loop" for c in parsed["calls"])
        res["summary"] = summarise(parsed, args.n, args.batch) if has_loops else None
        res["unknown_sizes"] = parsed["unknown"]
        if res["summary"] is None:
            res["code_error"] = "no cpp_fused loops found in the generated code (another inductor wrapper format?)"
    else:
        res["summary"], res["code_error"] = None, f"the generated code on {device.type} is not a CPU wrapper"
    res["variants"] = time_variants(st, x, dt, args.variants, steps=args.steps, repeat=args.repeat, device=device)
    if device.type == "cpu":
        res["profile"] = profile_split(st, x, dt, args.steps)
        res["profile"]["matmul_flops_per_step"] = 24 * args.batch * args.n**3  # 12 products of n x n matrices
    res["load_average_end"] = load_average()
    report = {
        "tag": args.tag,
        "date_utc": utc_now(),
        "command": command,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(device),
        "ceilings": ceil,
        "results": res,
    }
    paths = write_report(args.out, "ns2d_kernels", args.tag, report, markdown(report))
    print(f"wrote {paths[1]}")
    return report


if __name__ == "__main__":
    main()
