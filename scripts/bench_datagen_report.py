"""Tables and markdown of the 1D data-generation benchmark (:mod:`bench_datagen`): report ``datagen_<tag>``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, also when this file is imported by path

from benchlib import ceilings_line, fmt, rerun_section
from rich.console import Console
from rich.table import Table

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
    "ETDRK4 GB/s compulsory: the batch's compulsory memory traffic (bench_datagen.etdrk4_step_bytes: 34 float64 "
    "arrays of the solver grid per step and trajectory, fixed before optimising) over its time, and in brackets "
    "that as a fraction of the triad bandwidth measured in the same run. The batch's working set often stays in "
    "cache, so the fraction can exceed what streaming from memory would allow; it says how far the solver is "
    "from moving its arrays once per step at the machine's streaming rate.",
    "Rates are wall clock; ETDRK4 rates are for one batch of --n-batch trajectories after a warm-up (GPU "
    "synchronised; fastest of --repeat runs); the HDF5 column times generate_shard_data + write_shard of one "
    "shard (seed derivation, rejection/replacement, float32 conversion, lzf-compressed write); Radau rates count "
    "successful solves only (failures and timeouts are listed in the JSON).",
]


def fmt_speedup(r: dict[str, Any]) -> str:
    """Speed-up over serial Radau, and over Radau run on every usable core in brackets."""
    if not r.get("speedup"):
        return "-"

    def x(v: float) -> str:
        return f"{v:.0f}x" if v >= 10 else f"{v:.2g}x"

    return f"{x(r['speedup'])} ({x(r['speedup_vs_radau_all_cores'])})"


def fmt_bandwidth(bytes_per_s: float | None, triad: float | None) -> str:
    """Achieved compulsory bandwidth in GB/s and, in brackets, its fraction of the triad ceiling."""
    if not bytes_per_s:
        return "-"
    return f"{bytes_per_s / 1e9:.3g}" + (f" ({100 * bytes_per_s / triad:.0f} %)" if triad else "")


def fmt_radau(r: dict[str, Any] | None) -> str:
    """Radau rate with the count of successful solves."""
    if not r:
        return "-"
    return f"{fmt(r['traj_per_s'])} ({r['n_ok']}/{r['n']})"


def table_rows(
    results: dict[str, Any], triad: float | None = None
) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """Headers and rows of the full-setting and short-horizon tables (``triad``: the measured streaming bandwidth,
    bytes/s, for the ETDRK4 rate's fraction of it)."""
    cores = next(iter(results.values()), {}).get("usable_cores", "all")
    speed = f"speed-up (vs Radau on {cores} cores)"
    full_head = [
        "PDE",
        "grid ETDRK4/Radau",
        "frames (of)",
        "ETDRK4 traj/s",
        "ETDRK4 GB/s compulsory (of triad)",
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
                    fmt_bandwidth(full.get("etdrk4", {}).get("bytes_per_s"), triad),
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


def _triad(report: dict[str, Any]) -> float | None:
    return (report.get("ceilings") or {}).get("triad_bytes_per_s")


def print_tables(results: dict[str, Any], report: dict[str, Any]) -> None:
    """Rich tables of both settings, and the notes."""
    console = Console(width=None if sys.stdout.isatty() else 180)
    full_head, full_rows, short_head, short_rows = table_rows(results, _triad(report))
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
    if report.get("ceilings"):
        console.print(ceilings_line(report["ceilings"]), highlight=False)
    for note in NOTES:
        console.print(f"- {note}", highlight=False)


def markdown(results: dict[str, Any], report: dict[str, Any]) -> str:
    """The report as markdown: tables, notes, machine, how to rerun."""
    full_head, full_rows, short_head, short_rows = table_rows(results, _triad(report))
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
    if report.get("ceilings"):
        lines += [ceilings_line(report["ceilings"]), ""]
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
    lines += rerun_section(report["command"], f"datagen_{report['tag']}.json")
    return "\n".join(lines)
