"""Summarise a stored regression ``results.json`` again with the current statistics.

    python scripts/resummarise.py runs/x/eval_regression_n64/results.json [--out DIR]

Recomputes the summary (mean ± std, ddof=1), the paired ratio intervals and the budgets from the file's
per-cell test scores and choices (``ssl_pde.eval.protocol.summarise_cells``), writes ``results.json``,
``results.md`` and ``comparisons.png`` to ``--out`` (default: beside the input, which is then updated in
place) and prints the table. Nothing is refitted and the test split is not read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ssl_pde.cli.common import fail
from ssl_pde.eval import report
from ssl_pde.eval.protocol import summarise_cells


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results.json of ssl-pde-eval task=regression")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        doc = json.loads(args.results.read_text())
        result = doc["result"]
        n_boot = doc["config"]["regression"]["n_boot"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"{args.results}: not a regression results.json of ssl-pde-eval ({type(e).__name__}: {e})")
    result.update(summarise_cells(result, n_boot))
    out = args.out or args.results.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    table = report.regression_table(doc)
    (out / "results.md").write_text(f"# Regression: {doc['pde']}\n\n{table}\n")
    report.comparison_plot(out / "comparisons.png", result)
    print(table)


if __name__ == "__main__":
    main()
