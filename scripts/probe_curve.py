"""Label-efficiency curve of frozen encoders: the ``ssl_linear`` probe's test error against the number of labels.

    python scripts/probe_curve.py --ckpt runs/ns2d/pretrain/encoder.pt --data runs/ns2d/data \\
        --labels 64 256 1024 2048 [--eval-window start] [--eval-crops 3 2] [--ckpt more/encoder.pt ...]

A thin shell over :func:`ssl_pde.eval.curves.probe_curve`: the labelled subsets are drawn as ``ssl-pde-eval``
draws them, the ridge strength is chosen on the valid split, the test split is scored once after every
choice, beside the best-constant floor. Prints a table; writes ``probe_curve.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ssl_pde.core.cli import fail, resolve_device
from ssl_pde.core.errors import UserError
from ssl_pde.data.schema import SchemaError
from ssl_pde.eval.curves import curve_table, probe_curve
from ssl_pde.eval.setup import load_inputs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--ckpt",
        type=Path,
        action="append",
        required=True,
        help="encoder.pt written by ssl-pde-pretrain (repeat: one per pretraining seed)",
    )
    ap.add_argument("--data", type=Path, required=True, help="data root holding <pde>/{train,valid,test}")
    ap.add_argument("--labels", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2], help="label-draw seeds")
    ap.add_argument("--param", default=None, help="target parameter (default: the encoder's probe parameter)")
    ap.add_argument("--eval-window", default=None, help="ns2d: start, center or end (default: as at pretraining)")
    ap.add_argument(
        "--eval-crops",
        type=int,
        nargs=2,
        default=[1, 1],
        metavar=("NT", "NX"),
        help="evaluation crops per trajectory in time and space, representations averaged (ssl-pde-eval eval_crops)",
    )
    ap.add_argument("--select-metric", default="nmse", help="valid metric the ridge strength minimises (e.g. mse)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="folder for probe_curve.json (default: beside --ckpt)")
    args = ap.parse_args(argv)
    out = args.out or args.ckpt[0].parent / "probe_curve"
    try:
        inp = load_inputs(
            args.ckpt,
            args.data,
            resolve_device(args.device),
            param=args.param,
            eval_window=args.eval_window,
            eval_crops=args.eval_crops,
        )
        doc = probe_curve(inp, args.labels, args.draws, select_metric=args.select_metric)
    except (UserError, SchemaError) as e:  # as ssl-pde-eval: one line, exit status 2
        fail(str(e))
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe_curve.json").write_text(json.dumps(doc, indent=2))
    print(curve_table(doc))
    print(f"\nwrote {out / 'probe_curve.json'}")


if __name__ == "__main__":
    main()
