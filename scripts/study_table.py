"""One table over a study's variants: each method's valid score (what choices may use) beside its test score.

    python scripts/study_table.py runs/reproduce_cpu/burgers [--methods ssl_linear ssl_finetune supervised]

Reads every ``eval_regression_n*/results.json`` under the PDE's directory: the scale's own runs and each variant
of ``scripts/reproduce.py --variant NAME`` (``<pde>/<NAME>/eval_regression_*``). Per variant and label count: the
mean over cells of each method's valid score of the selection metric (the score its chosen candidate reached
on valid), its test mean ± std, and the paired supervised / fine-tuned ratio with its interval. Pick a variant by
the valid columns only; the test columns report it. Writes nothing; prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def rows(pde_dir: Path, methods: list[str]) -> list[str]:
    """Markdown rows, one per (variant, label count) with results."""
    out = []
    for path in sorted(pde_dir.glob("**/eval_regression_n*/results.json")):
        doc = json.loads(path.read_text())
        r = doc["result"]
        m = r["select_metric"]
        rel = path.parent.parent.relative_to(pde_dir)
        variant = str(rel) if str(rel) != "." else "(scale's own)"
        cells = []
        for meth in methods:
            valid = [c["choices"][meth]["valid"] for c in r["cells"] if "valid" in c["choices"].get(meth, {})]
            test = r["summary"].get(meth, {}).get(m)
            v = f"{np.mean(valid):.3g}" if valid else "-"
            t = f"{test[0]:.3g} ± {test[1]:.2g}" if test else "-"
            cells.append(f"{v} / {t}")
        c = r["comparisons"].get("supervised/ssl_finetune")
        cmp = f"{c['ratio']:.2f} [{c['low']:.2f}, {c['high']:.2f}]" if c else "-"
        out.append(f"| {variant} | {doc['n_labels']} | {len(r['cells'])} | " + " | ".join(cells) + f" | {cmp} |")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pde_dir", type=Path, help="<out>/<pde> of scripts/reproduce.py")
    ap.add_argument("--methods", nargs="+", default=["ssl_linear", "ssl_finetune", "supervised"])
    args = ap.parse_args(argv)
    found = rows(args.pde_dir, args.methods)
    if not found:
        sys.exit(f"error: no eval_regression_*/results.json under {args.pde_dir}")
    head = " | ".join(f"{m}: valid / test" for m in args.methods)
    print(f"| variant | labels | cells | {head} | supervised / fine-tuned |")
    print("|" + "---|" * (4 + len(args.methods)))
    print("\n".join(found))


if __name__ == "__main__":
    main()
