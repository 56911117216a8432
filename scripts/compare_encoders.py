"""Two encoders on one downstream task: paired ratios of two ``ssl-pde-eval`` regression results, per method.

    python scripts/compare_encoders.py PER_PDE/results.json MIXED/results.json --names per-PDE mixed \
        [--metric nmse] [--margin 1.10] [--n-boot 10000]

A and B are the same evaluation (PDE, target, label count, label draws, settings) of different encoders: e.g. one
PDE's own encoder (A) and a mixed run's export for that PDE (B), one run per pretraining seed on each side. Cells
are paired by (pretraining seed index, label draw): the same labelled set on both sides (checked through each
cell's floor, which is fitted on the drawn labels alone); the pretraining seeds of the two sides are paired by
position. Per method present in both: the geometric means of the metric, the ratio B / A (below 1: B better) with
the two-level bootstrap 95 % interval of :func:`ssl_pde.eval.stats.ratio_interval` over pretraining seeds and label
draws, a difference verdict, and non-inferiority against ``--margin``: B is non-inferior when the interval's upper
bound is at most the margin (B at most ``margin - 1`` worse, at 95 %), "inferiority not excluded" otherwise.

The supervised network does not read the encoder: with the same pretraining seeds on both sides its cells are
trained identically (their ratio is 1 exactly), a check that the two runs are the same evaluation. Prints Markdown;
writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ssl_pde.core.cli import fail
from ssl_pde.core.errors import UserError
from ssl_pde.eval.pairs import METHODS, SAME_EVALUATION, check_same_labels, load_results, score_grid, settings_diff
from ssl_pde.eval.stats import NO_DIFFERENCE, ratio_interval
from ssl_pde.metrics import REGRESSION_METRICS


def check_comparable(a: dict[str, Any], b: dict[str, Any], name: str) -> None:
    """Refuse ``b`` unless it is ``a``'s evaluation (settings, labelled sets, cells) of other encoders."""
    check_same_labels(a, b, name, SAME_EVALUATION)
    diff = settings_diff(a, b)
    if diff:
        raise UserError(f"{name}: its evaluation settings differ from the first file's in {diff}")


def compare(
    a: dict[str, Any], b: dict[str, Any], names: tuple[str, str], metric: str, margin: float, n_boot: int
) -> dict[str, Any]:
    """Per method: geometric means of ``metric`` on each side, B / A with its interval, the verdicts."""
    if metric not in REGRESSION_METRICS or not REGRESSION_METRICS[metric][1]:
        lower = [k for k, (_, low) in REGRESSION_METRICS.items() if low]
        raise UserError(f"metric {metric!r}: give a lower-is-better metric ({', '.join(lower)})")
    if not margin >= 1:
        raise UserError(f"--margin {margin}: the largest tolerated ratio B / A, at least 1 (e.g. 1.10)")
    present = set(a["result"]["cells"][0]["test"]) & set(b["result"]["cells"][0]["test"])
    rows = {}
    for m in (m for m in METHODS if m in present):
        ga, gb = score_grid(a, m, metric), score_grid(b, m, metric)
        r = ratio_interval(gb, ga, names=(names[0], names[1]), n_boot=n_boot)  # B / A: below 1, B is better
        if not np.isfinite(r.low):
            verdict, non_inf = NO_DIFFERENCE, "one cell: no interval"
        else:
            verdict = f"{names[1]} better" if r.high < 1 else f"{names[0]} better" if r.low > 1 else NO_DIFFERENCE
            non_inf = f"{names[1]} non-inferior" if r.high <= margin else "inferiority not excluded"
        rows[m] = {
            names[0]: float(np.exp(np.log(ga).mean())),
            names[1]: float(np.exp(np.log(gb).mean())),
            "ratio": r.ratio,
            "low": r.low,
            "high": r.high,
            "verdict": verdict,
            "non_inferiority": non_inf,
            "interval_over": r.levels,
            "cells": r.cells,
        }
    return {"metric": metric, "margin": margin, "names": list(names), "methods": rows}


def table(res: dict[str, Any], title: str) -> str:
    """The Markdown table of :func:`compare`."""
    a, b = res["names"]
    m = res["metric"]
    lines = [
        f"### {title}",
        "",
        f"| method | {a} {m} | {b} {m} | {b} / {a} [95 %] | difference | non-inferiority (upper bound <= "
        f"{res['margin']:g}) |",
        "|---|---|---|---|---|---|",
    ]
    for meth, r in res["methods"].items():
        ci = f"{r['ratio']:.3g} [{r['low']:.3g}, {r['high']:.3g}]" if np.isfinite(r["low"]) else f"{r['ratio']:.3g}"
        lines.append(f"| {meth} | {r[a]:.4g} | {r[b]:.4g} | {ci} | {r['verdict']} | {r['non_inferiority']} |")
    first = next(iter(res["methods"].values()), None)
    if first:
        lines += ["", f"Geometric means over cells; 95 % bootstrap intervals over {first['interval_over']}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="results.json of encoder A (the reference, e.g. the PDE's own encoder)")
    ap.add_argument("b", type=Path, help="results.json of the same evaluation of encoder B")
    ap.add_argument("--names", nargs=2, default=["A", "B"], help="names of A and B in the table")
    ap.add_argument("--metric", default="nmse", help="a lower-is-better metric of the results (default nmse)")
    ap.add_argument("--margin", type=float, default=1.10, help="non-inferiority margin on B / A (default 1.10)")
    ap.add_argument("--n-boot", type=int, default=10000, help="bootstrap replicates of each interval")
    args = ap.parse_args(argv)
    try:
        a, b = load_results(args.a, "encoder comparisons"), load_results(args.b, "encoder comparisons")
        check_comparable(a, b, str(args.b))
        res = compare(a, b, tuple(args.names), args.metric, args.margin, args.n_boot)
    except UserError as e:
        fail(str(e))
    title = f"{a.get('pde')} {a.get('param')}, {a.get('n_labels')} labels: {args.names[1]} vs {args.names[0]}"
    print(table(res, title))
    return res


if __name__ == "__main__":
    main()
