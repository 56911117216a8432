"""Merge regression runs of different encoders of one setting into one run (a long evaluation in chunks).

    python scripts/merge_runs.py R/eval_regression_n64_s0/results.json R/eval_regression_n64_s1/results.json \\
        R/eval_regression_n64_s2/results.json --out R/eval_regression_n64_s012

A three-encoder evaluation can run as three one-encoder runs (in parallel, or in separate sittings); this
joins their cells as if one ``ssl-pde-eval "ckpt=[...]"`` call had made them: the encoders in the order given,
each cell's ``pretrain_seed_index`` shifted accordingly, then the summary, the paired intervals (over encoders
and label draws) and the budgets computed again (``ssl_pde.eval.protocol.summarise_cells``), with the table,
``results.md`` and the comparison figure. Nothing is refitted and no split is read. Refused, with one line:
runs of different data, PDE, target, labelled-set size, label draws, corruption, transfer or evaluation
settings (everything in the stored config but the checkpoints, output directory, device, W&B and baseline-cache
settings), runs whose
floors differ on a label draw (their labelled sets differ), an encoder given twice, or two cells trained from
the same seed (``train_seed``: the evaluation seeds each cell from its encoder's pretraining seed and the label
draw; one-encoder runs made before that were seeded by position, so each of them trained its supervised
network exactly as the others did, and joined they would repeat one supervised run as if it were several).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ssl_pde.core.cli import fail
from ssl_pde.core.errors import UserError
from ssl_pde.eval import report
from ssl_pde.eval.pairs import SAME_EVALUATION, settings_diff
from ssl_pde.eval.protocol import cell_seed, summarise_cells


def merge(docs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One results document whose encoders are the runs' encoders in order (see the module docstring)."""
    first = docs[0]
    same = ("task", *SAME_EVALUATION)
    for doc, name in zip(docs[1:], names[1:], strict=True):
        if doc.get("task") != "regression":
            raise UserError(f"{name}: not a regression run (task {doc.get('task')!r})")
        for k in same:
            if doc.get(k) != first.get(k):
                raise UserError(f"{name}: {k} {doc.get(k)!r} differs from {names[0]}'s {first.get(k)!r}")
        diff = settings_diff(first, doc)
        if diff:
            raise UserError(f"{name}: evaluation settings differ from {names[0]}'s in {', '.join(diff)}")
        for k in ("metrics", "select_metric", "label_draws"):
            if doc["result"][k] != first["result"][k]:
                raise UserError(f"{name}: {k} differs from {names[0]}'s")
    if first.get("task") != "regression":
        raise UserError(f"{names[0]}: not a regression run (task {first.get('task')!r})")
    ckpts = [c for d in docs for c in d["ckpts"]]
    if len(set(ckpts)) != len(ckpts):
        raise UserError(f"an encoder is given twice: {sorted(c for c in set(ckpts) if ckpts.count(c) > 1)}")
    floors: dict[int, Any] = {}
    seeds: dict[int, str] = {}
    cells, offset = [], 0
    for doc, name in zip(docs, names, strict=True):
        r = doc["result"]
        for c in r["cells"]:
            f = c["test"]["floor"]
            if floors.setdefault(c["label_draw"], f) != f:
                raise UserError(f"{name}: the floor of label draw {c['label_draw']} differs (other labelled sets)")
            if "train_seed" not in c and doc.get("merged_from"):
                raise UserError(
                    f"{name}: a merged result whose cells do not record their training seeds; merge its parts instead"
                )
            seed = c.get("train_seed", cell_seed(c["pretrain_seed_index"], c["label_draw"]))
            if seeds.setdefault(seed, name) != name:
                raise UserError(
                    f"{name}: its cell of label draw {c['label_draw']} was trained from seed {seed}, as "
                    f"{seeds[seed]}'s was (runs seeded by encoder position); rerun it with this version of "
                    "ssl-pde-eval, which seeds cells by the encoder's pretraining seed"
                )
            cells.append({**c, "pretrain_seed_index": c["pretrain_seed_index"] + offset, "train_seed": seed})
        offset += r["n_pretrain_seeds"]
    result = {**first["result"], "cells": cells, "n_pretrain_seeds": offset}
    n_boot = first["config"]["regression"]["n_boot"]
    result.update(summarise_cells(result, n_boot))
    return {
        **first,
        "ckpts": ckpts,
        "pretrain_seeds": [k for d in docs for k in d.get("pretrain_seeds", [None] * len(d["ckpts"]))],
        "result": result,
        "seconds": round(sum(d.get("seconds", 0.0) for d in docs), 1),
        "merged_from": names,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, nargs="+", help="results.json of each run, encoders in this order")
    ap.add_argument("--out", type=Path, required=True, help="directory for the merged results.json, .md, figure")
    args = ap.parse_args(argv)
    docs = []
    try:
        if len(args.results) < 2:
            raise UserError("give at least two results.json files to merge")
        for p in args.results:
            try:
                docs.append(json.loads(p.read_text()))
            except (OSError, ValueError) as e:
                raise UserError(f"{p}: not a readable results.json ({type(e).__name__})") from None
        doc = merge(docs, [str(p) for p in args.results])
    except UserError as e:
        fail(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    table = report.regression_table(doc)
    report.comparison_plot(args.out / "comparisons.png", doc["result"])
    (args.out / "results.json").write_text(json.dumps(doc, indent=2))
    (args.out / "results.md").write_text(f"# Regression: {doc['pde']}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
