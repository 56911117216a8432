"""Choose the end-to-end methods' training inputs on the valid split only (never reads a test split).

    python scripts/choose_train_inputs.py --ckpt runs/ns2d/pretrain_s0/encoder.pt --data runs/ns2d/data \\
        --labels 64 256 --kinds crops eval --eval-scale ns2d_cpu --out docs/runs/ns2d_cpu

For every labelled-set size and training-input kind (``crops``: random crops anywhere in the trajectory;
``lie``: crops + symmetry views; ``eval``: the evaluation inputs themselves), fine-tuning and the supervised
baseline each run their whole learning-rate search (the eval scale's budgets) on label draw 0; the valid score of
each search's chosen candidate is recorded. Rule, fixed before the run: the kind with the lower geometric mean of
the valid scores over both methods and every size (the mean of their logs, so no one cell's scale dominates) is
the one both methods use (the same for both, so the comparison stays even).
Writes ``train_inputs.json`` to ``--out`` and prints a table. Parts run side by side (e.g. one process per
``--kinds``, each with its own ``--out``) are decided together by ``--combine A/train_inputs.json B/...``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ssl_pde.core.cli import fail, resolve_device
from ssl_pde.core.errors import UserError
from ssl_pde.eval.config import compose_eval_config
from ssl_pde.eval.data import draw_labels
from ssl_pde.eval.regression import TRAIN_INPUTS, fit_network, pretrained_copy
from ssl_pde.eval.setup import load_inputs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--combine", type=Path, nargs="+", default=None, help="decide over these parts' rows instead")
    ap.add_argument("--ckpt", type=Path, required=False, help="encoder.pt written by ssl-pde-pretrain")
    ap.add_argument("--data", type=Path, required=False, help="data root holding <dataset>/{train,valid}")
    ap.add_argument("--labels", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--kinds", nargs="+", default=["crops", "eval"], choices=TRAIN_INPUTS)
    ap.add_argument("--eval-scale", default=None, help="configs/eval_scale/ overlay giving the budgets")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        if a.combine:
            parts = [json.loads(p.read_text()) for p in a.combine]
            keys = ("ckpt", "data", "eval_scale", "metric")
            for p, part in zip(a.combine[1:], parts[1:], strict=True):
                if any(part.get(k) != parts[0].get(k) for k in keys):
                    raise UserError(f"{p}: its {', '.join(keys)} differ from {a.combine[0]}'s; combine one setting")
            decide([r for p in parts for r in p["rows"]], {k: parts[0].get(k) for k in keys}, a.out)
        elif a.ckpt is None or a.data is None:
            raise UserError("--ckpt and --data are required (or --combine part files)")
        else:
            run(a)
    except UserError as e:
        fail(e)


def run(a: argparse.Namespace) -> None:
    overrides = [f"ckpt={a.ckpt}", f"data.dir={a.data}"] + ([f"eval_scale={a.eval_scale}"] if a.eval_scale else [])
    full = compose_eval_config(overrides)
    cfg = full.regression
    cfg.n_labels = max(a.labels)
    device = resolve_device(a.device)
    inp = load_inputs(
        [a.ckpt],
        a.data,
        device,
        split_names=("train", "valid"),
        param=full.param,
        log_target=full.log_target,
        eval_window=full.eval_window,
    )
    train, valid = inp.splits["train"], inp.splits["valid"]
    cfg.check(len(train))
    metric = cfg.select_metric
    rows = []
    for n in a.labels:
        lab = train.subset(draw_labels(len(train), n, 0))
        for kind in a.kinds:
            for method, spec, init in (
                ("ssl_finetune", cfg.finetune, pretrained_copy(inp.encoders[0])),
                ("supervised", cfg.supervised, inp.fresh),
            ):
                spec.views = [kind]
                t0 = time.perf_counter()
                fitted = fit_network(
                    init,
                    inp.views,
                    lab,
                    valid,
                    spec,
                    log_target=inp.log_target,
                    metric=metric,
                    seed=0,
                    device=device,
                    recalibrate_bn=cfg.recalibrate_bn,
                )
                c = fitted.choice
                rows.append(
                    {
                        "n_labels": n,
                        "inputs": kind,
                        "method": method,
                        "valid": c["valid"],
                        "chosen": c["chosen"],
                        "candidates": c["candidates"],
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                )
                print(f"n={n:5d} {kind:6s} {method:13s} valid {metric} {c['valid']:.4g}  {c['chosen']}", flush=True)
    head = {"ckpt": str(a.ckpt), "data": str(a.data), "eval_scale": a.eval_scale, "metric": metric}
    decide(rows, head, a.out)


def decide(rows: list[dict], head: dict, out: Path) -> str:
    """Apply the rule to ``rows`` and write ``train_inputs.json`` (the rows, the means, the chosen kind)."""
    kinds = list(dict.fromkeys(r["inputs"] for r in rows))
    keys = [(r["n_labels"], r["method"], r["inputs"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise UserError("a (labels, method, inputs) row appears twice: combine each part once")
    cells = {(r["n_labels"], r["method"]) for r in rows}
    if any({(r["n_labels"], r["method"]) for r in rows if r["inputs"] == k} != cells for k in kinds):
        raise UserError("the parts do not cover the same sizes and methods for every kind")
    means = {k: float(np.exp(np.mean([np.log(r["valid"]) for r in rows if r["inputs"] == k]))) for k in kinds}
    chosen = min(means, key=means.__getitem__)
    rule = "lowest geometric mean of the valid scores over both methods and every labelled-set size (label draw 0)"
    doc = {**head, "rule": rule, "geometric_mean_valid": means, "chosen": chosen, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_inputs.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("geometric mean valid " + ", ".join(f"{k} {v:.4g}" for k, v in means.items()) + f" -> chosen: {chosen}")
    return chosen


if __name__ == "__main__":
    main()
