#!/usr/bin/env python
"""Does an execution setting change what pretraining learns? Pretrain with setting A and setting B from the same
seeds for the same steps, and compare the online probe at the end, its seed-to-seed spread, and samples/s.

    python scripts/compare_pretrain.py --data demo_out --experiment burgers_demo --seeds 0 1 \\
        --a method.channels_last=false --b method.channels_last=true --out docs/benchmarks --tag channels_last_cpu

Each run is ``ssl-pde-pretrain experiment=<experiment> data.dir=<data> seed=<s> <setting>`` (in this process,
loggers: CSV only), into ``<work>/<setting>_s<seed>`` (comparisons sharing a setting and ``--work`` share its runs).
The report gives, per seed, the final ``val/probe_nmse`` (the online ridge probe on valid, logged every epoch), the
effective rank of the representation (``val/rankme``: collapse shows as a small rank) and the mean logged
``train/samples_per_s``; then the paired
difference B - A of the probe over seeds with its 95 % t-interval (ddof=1), and each setting's seed-to-seed
spread. Settings that only change how the arithmetic is done (memory layout, fused kernels) should leave an
interval that contains 0.
Writes ``<out>/pretrain_compare_<tag>.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib

import numpy as np
import scipy.stats
from benchlib import load_average, machine_info, utc_now, write_report


def last_metrics(run_dir: Path) -> dict[str, float]:
    """Final ``val/probe_nmse`` and mean ``train/samples_per_s`` from a run's CSV log (``<run_dir>/csv``)."""
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    probe = [float(r["val/probe_nmse"]) for r in rows if r.get("val/probe_nmse")]
    rank = [float(r["val/rankme"]) for r in rows if r.get("val/rankme")]
    speed = [float(r["train/samples_per_s"]) for r in rows if r.get("train/samples_per_s")]
    steps = max(int(r["step"]) for r in rows)
    out = {"probe_nmse": probe[-1], "samples_per_s": float(np.mean(speed)), "steps": steps, "epochs": len(probe)}
    return out | ({"rankme": rank[-1]} if rank else {})


def slug(setting: list[str]) -> str:
    """A directory name for a setting's runs (so that comparisons sharing a setting share its runs)."""
    return "_".join(setting).replace("/", "-").replace("=", "-").replace("+", "") or "default"


def run(data: Path, experiment: str, seed: int, setting: list[str], extra: list[str], run_dir: Path) -> dict:
    """One pretraining run in this process; its final metrics. A finished run (its exported ``encoder.pt``
    present) is read, not run again, so an interrupted comparison resumes where it stopped; one whose saved
    ``config.yaml`` disagrees with these overrides is refused."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from ssl_pde import CONFIG_DIR
    from ssl_pde.cli.pretrain import pretrain

    overrides = [f"experiment={experiment}", f"data.dir={data}", f"seed={seed}", *extra, *setting]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("pretrain", overrides=[*overrides, f"run_dir={run_dir}", "logger=csv"])
    if (run_dir / "encoder.pt").exists():
        saved = OmegaConf.load(run_dir / "config.yaml")
        keys = [o.split("=", 1)[0].lstrip("+") for o in overrides] + ["trainer.precision"]  # may resolve per machine
        differ = [k for k in keys if OmegaConf.select(saved, k) != OmegaConf.select(cfg, k)]
        if differ or saved.get("name") != cfg.get("name"):
            raise SystemExit(f"error: {run_dir} was made with other settings ({differ or 'name'}): use another --work")
        return last_metrics(run_dir)
    pretrain(cfg)
    return last_metrics(run_dir)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="data directory (e.g. a demo's out_dir)")
    ap.add_argument("--experiment", default="burgers_demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--a", nargs="+", required=True, help="overrides of setting A (the reference)")
    ap.add_argument("--b", nargs="+", required=True, help="overrides of setting B")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides of both (e.g. trainer.max_epochs=5)")
    ap.add_argument("--work", type=Path, default=None, help="run directories (default: a temporary directory)")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    ap.add_argument("--tag", required=True)
    args = ap.parse_args(argv)
    if len(args.seeds) < 2:
        ap.error("--seeds needs at least 2 seeds (the seed-to-seed spread is the yardstick)")
    command = shlex.join(["python", "scripts/compare_pretrain.py", *(sys.argv[1:] if argv is None else argv)])
    work = args.work or Path(tempfile.mkdtemp(prefix="compare_pretrain_"))
    load0 = load_average()
    res: dict[str, dict[int, dict]] = {"A": {}, "B": {}}
    for seed in args.seeds:
        for name, setting in (("A", args.a), ("B", args.b)):
            print(f"[{utc_now()}] {name} seed {seed}: {' '.join(setting)}", flush=True)
            run_dir = work / f"{slug(setting)}_s{seed}"
            res[name][seed] = run(args.data, args.experiment, seed, setting, args.extra, run_dir)
            print(f"    {res[name][seed]}", flush=True)
    steps = {r["steps"] for d in res.values() for r in d.values()}
    if len(steps) != 1:
        raise SystemExit(f"error: the runs took different numbers of steps ({sorted(steps)}): not comparable")
    a = np.array([res["A"][s]["probe_nmse"] for s in args.seeds])
    b = np.array([res["B"][s]["probe_nmse"] for s in args.seeds])
    sa = np.array([res["A"][s]["samples_per_s"] for s in args.seeds])
    sb = np.array([res["B"][s]["samples_per_s"] for s in args.seeds])
    d = b - a
    half = float(scipy.stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    summary: dict[str, Any] = {
        "probe_mean_a": float(a.mean()),
        "probe_mean_b": float(b.mean()),
        "probe_seed_std_a": float(a.std(ddof=1)),
        "probe_seed_std_b": float(b.std(ddof=1)),
        "probe_mean_paired_difference": float(d.mean()),
        "probe_paired_difference_ci95": [float(d.mean()) - half, float(d.mean()) + half],
        "within_seed_noise": bool(abs(float(d.mean())) <= half),
        "samples_per_s_ratio_b_over_a": float(sb.mean() / sa.mean()),
    }
    report = {
        "command": command,
        "date_utc": utc_now(),
        "machine": machine_info("cpu"),
        "load_average": [load0, load_average()],
        "a": args.a,
        "b": args.b,
        "extra": args.extra,
        "runs": {k: {str(s): v for s, v in d.items()} for k, d in res.items()},
        "summary": summary,
    }
    lines = [
        f"# Pretraining with `{' '.join(args.b)}` (B) against `{' '.join(args.a)}` (A)",
        "",
        f"`experiment={args.experiment}` on `{args.data}`, {' '.join(args.extra) or 'its own budget'}; "
        f"{report['machine']['cpu']}, {report['machine']['torch_threads']} torch threads, load average "
        f"{load0} at the start. Same seeds, same steps: the online probe (`val/probe_nmse`, ridge on the frozen "
        "encoder, valid split) after the last epoch, and the mean logged samples/s.",
        "",
        "| seed | probe NMSE A | probe NMSE B | effective rank A | effective rank B | samples/s A | samples/s B "
        "| steps |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {s} | {res['A'][s]['probe_nmse']:.4f} | {res['B'][s]['probe_nmse']:.4f} | "
            f"{res['A'][s].get('rankme', float('nan')):.1f} | {res['B'][s].get('rankme', float('nan')):.1f} | "
            f"{res['A'][s]['samples_per_s']:.1f} | {res['B'][s]['samples_per_s']:.1f} | {res['A'][s]['steps']} |"
            for s in args.seeds
        ],
        "",
        f"Probe: A {summary['probe_mean_a']:.4f} (seed std {summary['probe_seed_std_a']:.4f}), B "
        f"{summary['probe_mean_b']:.4f} (seed std {summary['probe_seed_std_b']:.4f}, ddof=1); mean paired difference "
        f"B - A {summary['probe_mean_paired_difference']:+.4f}, 95 % t-interval over seeds "
        f"[{summary['probe_paired_difference_ci95'][0]:+.4f}, {summary['probe_paired_difference_ci95'][1]:+.4f}]: "
        + (
            f"contains 0: no difference shown over {len(args.seeds)} seeds (the interval's width is the resolution "
            "of this check)."
            if summary["within_seed_noise"]
            else "**excludes 0: the setting changes what is learned**."
        )
        + f" Samples/s B / A: {summary['samples_per_s_ratio_b_over_a']:.2f}x (whole runs, logging and validation "
        "included).",
        "",
        "## How to rerun",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    text = "\n".join(lines)
    write_report(args.out, "pretrain_compare", args.tag, report, text)
    print(text)


if __name__ == "__main__":
    main()
