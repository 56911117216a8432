"""One table over a study's variants: each method's valid score (what choices may use) beside its test score.

    python scripts/study_table.py runs/reproduce_cpu/burgers [--methods ssl_linear ssl_finetune supervised]

Reads every ``eval_regression_n*/results.json`` under the PDE's directory: the scale's own runs and each variant
of ``scripts/reproduce.py --variant NAME`` (``<pde>/<NAME>/eval_regression_*``). Per variant and label count: the
mean over cells of each method's valid score of the selection metric (the score its chosen candidate reached
on valid), its test mean ± std, and the paired supervised / fine-tuned ratio with its interval. Pick a variant by
the valid columns only; the test columns report it. Writes nothing; prints Markdown.

``--seed-index K`` keeps only the cells of each run's K-th pretraining encoder and summarises them again (the
interval then over label draws only): a screening study's one-encoder variants beside the matching encoder of
the scale's three-encoder runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ssl_pde.eval.protocol import summarise_cells


def one_encoder(r: dict, k: int) -> dict | None:
    """``r`` (a results.json's ``result``) restricted to its ``k``-th pretraining encoder's cells and summarised
    again; None when it has no such encoder."""
    cells = [dict(c, pretrain_seed_index=0) for c in r["cells"] if c["pretrain_seed_index"] == k]
    if not cells:
        return None
    sub = {**r, "cells": cells, "n_pretrain_seeds": 1}
    return {**sub, **summarise_cells(sub, n_boot=2000)}


def rows(pde_dir: Path, methods: list[str], seed_index: int | None = None) -> list[str]:
    """Markdown rows, one per evaluation run (variant and run directory) with results."""
    out = []
    for path in sorted(pde_dir.glob("**/eval_regression_n*/results.json")):
        doc = json.loads(path.read_text())
        r = doc["result"]
        if seed_index is not None and (r := one_encoder(r, seed_index)) is None:
            continue
        m = r["select_metric"]
        rel = path.parent.parent.relative_to(pde_dir)
        variant = str(rel) if str(rel) != "." else "(scale's own)"
        if path.parent.name.split("_")[-1] not in {"s" + "".join(map(str, range(k))) for k in range(1, 10)}:
            variant += f" ({path.parent.name})"  # a run directory of its own, e.g. a rerun under other settings
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
    ap.add_argument("--seed-index", type=int, default=None, help="keep only each run's K-th encoder's cells")
    args = ap.parse_args(argv)
    found = rows(args.pde_dir, args.methods, args.seed_index)
    if not found:
        sys.exit(f"error: no eval_regression_*/results.json under {args.pde_dir}")
    head = " | ".join(f"{m}: valid / test" for m in args.methods)
    print(f"| variant | labels | cells | {head} | supervised / fine-tuned |")
    print("|" + "---|" * (4 + len(args.methods)))
    print("\n".join(found))


if __name__ == "__main__":
    main()
