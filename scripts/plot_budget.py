"""Error against pretraining budget: one point per evaluation run, a line per method.

    python scripts/plot_budget.py --run 60=runs/reproduce_cpu/burgers/eval_regression_n64_s012/results.json \\
        --run 240=runs/reproduce_cpu/burgers/ep240/eval_regression_n64_s0/results.json --seed-index 0 \\
        --out docs/figures/burgers_budget.png

Each ``--run EPOCHS=results.json`` is an ``ssl-pde-eval`` regression run of encoders pretrained for EPOCHS
epochs; ``--seed-index K`` keeps each run's K-th encoder only (as ``scripts/study_table.py``). Plots the test
selection metric's mean ± std over cells for the frozen linear probe, fine-tuning, the supervised network and
the floor against the epochs (log axis), and prints the numbers. The supervised network and the floor do not
depend on pretraining: their spread across runs shows the runs' label draws agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

METHODS = {"floor": "best constant", "ssl_linear": "SSL frozen + linear", "ssl_finetune": "SSL fine-tuned"}
METHODS["supervised"] = "supervised (no pretraining)"


def points(runs: list[tuple[float, Path]], seed_index: int | None) -> dict[str, list[tuple[float, float, float]]]:
    """Per method: (epochs, mean, std) of the test selection metric over each run's (kept) cells."""
    out: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
    for epochs, path in sorted(runs):
        r = json.loads(path.read_text())["result"]
        cells = [c for c in r["cells"] if seed_index is None or c["pretrain_seed_index"] == seed_index]
        if not cells:
            sys.exit(f"error: {path} has no cells of encoder {seed_index}")
        for m in METHODS:
            v = np.array([c["test"][m][r["select_metric"]] for c in cells])
            out[m].append((epochs, float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="EPOCHS=RESULTS_JSON")
    ap.add_argument("--seed-index", type=int, default=None)
    ap.add_argument("--metric-label", default="test NMSE")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    runs = []
    for item in args.run:
        epochs, sep, path = item.partition("=")
        try:
            runs.append((float(epochs), Path(path)))
        except ValueError:
            sys.exit(f"error: --run {item!r}: expected EPOCHS=path/results.json")
        if not sep or not Path(path).is_file():
            sys.exit(f"error: --run {item!r}: no results file {path!r}")
    pts = points(runs, args.seed_index)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, label in METHODS.items():
        e, mu, sd = (np.array(v) for v in zip(*pts[m], strict=True))
        ls = "--" if m in ("floor", "supervised") else "-"
        ax.errorbar(e, mu, yerr=sd, marker="o", capsize=3, label=label, ls=ls)
        print(f"{label}: " + ", ".join(f"{a:g} ep {b:.3g} ± {c:.2g}" for a, b, c in pts[m]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pretraining epochs")
    ax.set_ylabel(args.metric_label)
    ax.set_title(args.title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
