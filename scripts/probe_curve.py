"""Label-efficiency curve of a frozen encoder: the ``ssl_linear`` probe's test error against the number of labels.

    python scripts/probe_curve.py --ckpt runs/reproduce_ns2d_cpu/ns2d/pretrain/encoder.pt \\
        --data runs/reproduce_ns2d_cpu/ns2d/data --labels 64 256 1024 2048 [--eval-window start]

The train and test splits are embedded once (the deterministic evaluation crops of ``ssl-pde-eval``); for
each label count and seed the labelled subset is drawn exactly as ``ssl-pde-eval`` draws it (so the 64-label
row repeats its ``ssl_linear`` figure), the same ridge probe is fitted, and the predict-the-mean floor is
scored beside it. No supervised baseline: this asks whether the information is in the representation at
all (many labels) or only hard to reach from few. Prints a table; writes ``probe_curve.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from ssl_pde.cli.common import UserError, fail
from ssl_pde.cli.eval import setup_task
from ssl_pde.data.schema import SchemaError
from ssl_pde.eval.regression import embed, linear_probe, scores


def curve(args: argparse.Namespace) -> dict:
    cfg = OmegaConf.create(
        {
            "task": "probe_curve",
            "ckpt": str(args.ckpt),
            "data": {"dir": str(args.data)},
            "param": args.param,
            "log_target": None,
            "eval_window": args.eval_window,
            "device": args.device,
            "out_dir": str(args.out),
        }
    )
    st = setup_task(cfg, ("train", "test"))
    train, test = st.splits["train"], st.splits["test"]
    bad = [n for n in args.labels if not 8 <= n <= len(train.y)]
    if bad:
        raise UserError(f"--labels {bad[0]} must lie in [8, {len(train.y)}] (train trajectories)")
    f_train = embed(st.encoder, st.views, train, st.device)
    f_test = embed(st.encoder, st.views, test, st.device)
    y_test = test.y.double()
    rows = []
    for n in args.labels:
        per_seed = []
        for seed in args.seeds:
            idx = np.sort(np.random.default_rng(seed).choice(len(train.y), n, replace=False))
            y_lab = train.y[torch.as_tensor(idx)].double()
            pred = linear_probe(f_train[idx], y_lab, f_test, st.log_target)
            floor = torch.full_like(y_test, float(y_lab.mean()))
            per_seed.append({"ssl_linear": scores(pred, y_test), "floor": scores(floor, y_test)})
        row = {"n_labels": n, "per_seed": per_seed}
        for m in ("ssl_linear", "floor"):
            for k in ("mse", "nmse"):
                v = [r[m][k] for r in per_seed]
                row[f"{m}_{k}"] = [float(np.mean(v)), float(np.std(v))]
        rows.append(row)
    return {
        "ckpt": str(args.ckpt),
        "pde": st.exp["pde"],
        "param": st.param,
        "eval_window": getattr(st.views, "eval_window", None),
        "seeds": list(args.seeds),
        "n_test": len(y_test),
        "rows": rows,
    }


def table(doc: dict) -> str:
    lines = [
        f"{doc['pde']} {doc['param']}: ssl_linear probe of {doc['ckpt']} (eval window: {doc['eval_window']}), "
        f"{doc['n_test']} test trajectories, seeds {doc['seeds']}",
        "",
        "| labels | SSL + linear, MSE | floor, MSE | SSL / floor | SSL + linear, NMSE |",
        "|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        s, f = r["ssl_linear_mse"], r["floor_mse"]
        lines.append(
            f"| {r['n_labels']} | {s[0]:.3g} ± {s[1]:.2g} | {f[0]:.3g} ± {f[1]:.2g} | {s[0] / f[0]:.2f} "
            f"| {r['ssl_linear_nmse'][0]:.3g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="encoder.pt written by ssl-pde-pretrain")
    ap.add_argument("--data", type=Path, required=True, help="data root holding <pde>/{train,test}")
    ap.add_argument("--labels", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--param", default=None, help="target parameter (default: the encoder's probe parameter)")
    ap.add_argument("--eval-window", default=None, help="ns2d: start, center or end (default: as at pretraining)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="folder for probe_curve.json (default: beside --ckpt)")
    args = ap.parse_args(argv)
    args.out = args.out or args.ckpt.parent / "probe_curve"
    try:
        doc = curve(args)
    except (UserError, SchemaError, ValueError) as e:  # as ssl-pde-eval: one line, exit status 2
        fail(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe_curve.json").write_text(json.dumps(doc, indent=2))
    print(table(doc))
    print(f"\nwrote {args.out / 'probe_curve.json'}")


if __name__ == "__main__":
    main()
