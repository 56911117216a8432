"""Summarise a stored ``results.json`` of ``ssl-pde-eval`` again with the current statistics.

    python scripts/resummarise.py runs/x/eval_regression_n64/results.json [--out DIR]

Recomputes the summary (mean ± std, ddof=1), the paired ratio intervals (and for regression the budgets)
from the file's per-cell test scores and choices (``ssl_pde.eval.protocol.summarise_cells``,
``ssl_pde.eval.timestep.summarise_timestep_cells``), writes ``results.json`` and ``results.md`` (and for
regression ``comparisons.png``) to ``--out`` (default: beside the input, which is then updated in place) and
prints the table. Nothing is refitted and the test split is not read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ssl_pde.core.cli import fail
from ssl_pde.eval import report
from ssl_pde.eval.config import TimestepConfig
from ssl_pde.eval.protocol import summarise_cells
from ssl_pde.eval.timestep import summarise_timestep_cells
from ssl_pde.eval.train import Search


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results.json of ssl-pde-eval")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        doc = json.loads(args.results.read_text())
        result, task = doc["result"], doc["task"]
        n_boot = doc["config"]["regression"]["n_boot"]
        ts = doc["config"]["timestep"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"{args.results}: not a results.json of ssl-pde-eval ({type(e).__name__}: {e})")
    out = args.out or args.results.parent
    out.mkdir(parents=True, exist_ok=True)
    if task == "regression":
        result.update(summarise_cells(result, n_boot))
        table, title = report.regression_table(doc), f"Regression: {doc['pde']}"
        report.comparison_plot(out / "comparisons.png", result)
    else:
        result.update(summarise_timestep_cells(result))
        cfg = TimestepConfig(**{**ts, "search": Search(**ts["search"])})
        table, title = report.timestep_table(doc, cfg), f"Conditioned time-stepping: {doc['pde']}"
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    (out / "results.md").write_text(f"# {title}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
