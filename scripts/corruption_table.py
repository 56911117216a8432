"""How much messy observations cost each method: paired corrupted / clean ratios of ``ssl-pde-eval`` results.

    python scripts/corruption_table.py CLEAN/results.json NOISY/results.json [MORE/results.json ...] \
        [--metric nmse] [--figure docs/figures/burgers_corruption.png]

CLEAN is an evaluation with ``corrupt`` off, each further file the same evaluation with corrupted observations
(``ssl-pde-eval ... corrupt.noise=0.05``): the same encoders, label draws (checked through the labelled sets'
best constants, which depend on the drawn labels only), label count and methods. Per corrupted file and method,
the paired ratio corrupted / clean of the metric over the (pretraining seed, label draw) cells, with the two-level
bootstrap 95 % interval of ``ssl_pde.eval.stats`` (above 1: the corruption hurts); per SSL method (and the
random-init control), the ratio of ratios ``(method corrupted / clean) / (supervised corrupted / clean)`` with its
interval: below 1, the method loses less to the corruption than the same network trained from scratch ("<method>
more robust"), above 1 less robust. With ``--figure``, each method's metric (geometric mean over cells) against
the level of the one corruption that varies across the files. Prints Markdown; writes only the figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ssl_pde.core.cli import fail
from ssl_pde.core.errors import UserError
from ssl_pde.eval.pairs import METHODS, check_same_labels, load_results, score_grid
from ssl_pde.eval.stats import NO_DIFFERENCE, ratio_interval
from ssl_pde.metrics import REGRESSION_METRICS

KINDS = ("noise", "drop_x", "drop_t")


def load(path: Path) -> dict[str, Any]:
    """A regression ``results.json`` of ``ssl-pde-eval``; a UserError names the file otherwise."""
    return load_results(path, "corruption tables")


def levels(doc: dict[str, Any]) -> dict[str, float]:
    """The corruption levels an evaluation ran with (files from before the option: clean)."""
    c = (doc.get("config") or {}).get("corrupt") or {}
    return {k: float(c.get(k, 0.0)) for k in KINDS}


def check_paired(clean: dict[str, Any], other: dict[str, Any], name: str) -> None:
    """Refuse a pair that is not the same evaluation on clean and corrupted observations: other encoders, label
    draws, label count or cells, a clean file with corruption or a corrupted file without."""
    if any(levels(clean).values()):
        raise UserError(f"the clean file was evaluated with corrupt {levels(clean)}; give the clean evaluation first")
    if not any(levels(other).values()):
        raise UserError(f"{name}: evaluated without corruption; nothing to compare")
    check_same_labels(clean, other, name, ("ckpts", "n_labels", "pde", "param"))


def _verdict(low: float, high: float, above: str, below: str) -> str:
    return above if low > 1 else below if high < 1 else NO_DIFFERENCE


def compare(clean: dict[str, Any], other: dict[str, Any], metric: str = "nmse", n_boot: int = 10000) -> dict:
    """Per method the paired corrupted / clean ratio of ``metric`` (``ratio``, ``low``, ``high``, ``verdict``,
    ``cells``, means), and per SSL method and ``random_init`` the ratio of its ratio over the supervised one's."""
    if metric not in REGRESSION_METRICS or not REGRESSION_METRICS[metric][1]:
        raise UserError(f"metric {metric!r}: give a lower-is-better metric ({', '.join(_lower_better())})")
    present = set(clean["result"]["cells"][0]["test"]) & set(other["result"]["cells"][0]["test"])
    methods = [m for m in METHODS if m in present]
    ratios, grids = {}, {}
    for m in methods:
        g0, g1 = score_grid(clean, m, metric), score_grid(other, m, metric)
        r = ratio_interval(g1, g0, n_boot=n_boot)  # corrupted / clean
        grids[m] = g1 / g0
        ratios[m] = {
            "clean": float(np.exp(np.log(g0).mean())),
            "corrupted": float(np.exp(np.log(g1).mean())),
            "ratio": r.ratio,
            "low": r.low,
            "high": r.high,
            "verdict": _verdict(r.low, r.high, "worse when corrupted", "better when corrupted"),
            "interval_over": r.levels,
            "cells": r.cells,
        }
    relative = {}
    if "supervised" in grids:
        for m in methods:
            if m != "supervised":
                r = ratio_interval(grids[m], grids["supervised"], n_boot=n_boot)  # (m's ratio) / (supervised's)
                relative[m] = {
                    "ratio": r.ratio,
                    "low": r.low,
                    "high": r.high,
                    "verdict": _verdict(r.low, r.high, "supervised more robust", f"{m} more robust"),
                    "interval_over": r.levels,
                    "cells": r.cells,
                }
    return {"levels": levels(other), "metric": metric, "ratios": ratios, "relative": relative}


def _lower_better() -> list[str]:
    return [k for k, (_, lower) in REGRESSION_METRICS.items() if lower]


def _interval(r: dict[str, Any]) -> str:
    if not np.isfinite(r["low"]):
        return f"{r['ratio']:.3g} (one cell: no interval)"
    return f"{r['ratio']:.3g} [{r['low']:.3g}, {r['high']:.3g}]"


def table(name: str, res: dict[str, Any]) -> str:
    """Markdown tables of one comparison."""
    lv = ", ".join(f"{k} {v:g}" for k, v in res["levels"].items() if v) or "none"
    m = res["metric"]
    lines = [
        f"### {name} (corrupt: {lv})",
        "",
        f"| method | clean {m} | corrupted {m} | corrupted / clean | verdict |",
        "|---|---|---|---|---|",
    ]
    for meth, r in res["ratios"].items():
        lines.append(f"| {meth} | {r['clean']:.4g} | {r['corrupted']:.4g} | {_interval(r)} | {r['verdict']} |")
    if res["relative"]:
        lines += [
            "",
            "| method | (method corrupted / clean) / (supervised corrupted / clean) | verdict |",
            "|---|---|---|",
        ]
        for meth, r in res["relative"].items():
            lines.append(f"| {meth} | {_interval(r)} | {r['verdict']} |")
    first = next(iter(res["ratios"].values()), None)
    if first:
        lines += ["", f"Geometric means over cells; 95 % bootstrap intervals over {first['interval_over']}."]
    return "\n".join(lines)


def figure(path: Path, clean: dict[str, Any], others: list[dict[str, Any]], metric: str) -> Path:
    """Each method's ``metric`` (geometric mean over cells, with the cells' range) against the level of the one
    corruption that varies across ``others`` (the clean file at level 0)."""
    varying = [k for k in KINDS if len({levels(o)[k] for o in others}) > 1 or any(levels(o)[k] for o in others)]
    if len(varying) != 1:
        raise UserError(f"--figure needs files that vary one corruption only; these vary {varying or 'none'}")
    kind = varying[0]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = sorted([clean, *others], key=lambda d: levels(d)[kind])
    x = [levels(d)[kind] for d in docs]
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    for m in METHODS:
        if all(m in d["result"]["cells"][0]["test"] for d in docs):
            gs = [score_grid(d, m, metric) for d in docs]
            mid = [float(np.exp(np.log(g).mean())) for g in gs]
            (line,) = ax.plot(x, mid, marker="o", label=m)
            ax.fill_between(x, [g.min() for g in gs], [g.max() for g in gs], color=line.get_color(), alpha=0.12)
    ax.set_yscale("log")
    ax.set_xlabel(f"corrupt.{kind}")
    ax.set_ylabel(f"test {metric} (geometric mean; band: cells' range)")
    ax.set_title(f"{clean.get('pde', '')} {clean.get('param', '')}, {clean.get('n_labels', '?')} labels")
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clean", type=Path, help="results.json of the clean evaluation")
    ap.add_argument("corrupted", type=Path, nargs="+", help="results.json of the same evaluation, corrupted")
    ap.add_argument("--metric", default="nmse", help="a lower-is-better metric of the results (default nmse)")
    ap.add_argument("--n-boot", type=int, default=10000, help="bootstrap replicates of each interval")
    ap.add_argument("--figure", type=Path, default=None, help="PNG of the metric against the corruption level")
    args = ap.parse_args(argv)
    try:
        clean = load(args.clean)
        others = [load(p) for p in args.corrupted]
        out = []
        for p, doc in zip(args.corrupted, others, strict=True):
            check_paired(clean, doc, str(p))
            out.append(table(str(p), compare(clean, doc, args.metric, args.n_boot)))
        if args.figure:
            figure(args.figure, clean, others, args.metric)
    except UserError as e:
        fail(str(e))
    print("\n\n".join(out))
    if args.figure:
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
