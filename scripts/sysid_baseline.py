"""What Burgers data permit: the viscosity recovered from the equation's residual, with no labels.

    python scripts/sysid_baseline.py --data runs/reproduce_cpu/burgers/data [--split test] [--crop-t 32 --crop-x 64]

A reference beside the learned methods of ``ssl-pde-eval`` (``docs/burgers-study.md``): the least-squares
viscosity of :func:`ssl_pde.eval.sysid.burgers_viscosity_lsq` on whole trajectories (spectral x-derivatives)
and on the evaluation crop the encoders see (the central ``crop_t`` frames, the first ``crop_x`` points, as
``LieViews.eval_view``; finite differences). Prints the test NMSE overall and per viscosity tercile beside the
best constant fitted on the train split. It knows the PDE and uses clean data: a bound on what the inputs
carry, not a competing method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ssl_pde.core.cli import fail
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.eval.data import Split
from ssl_pde.eval.sysid import burgers_viscosity_lsq
from ssl_pde.metrics import best_constant


def nmse(p: torch.Tensor, y: torch.Tensor) -> float:
    return float(((p - y) ** 2 / y**2).mean())


def run(data: Path, split: str, crop_t: int, crop_x: int) -> dict:
    """The estimates' NMSE on ``split`` (whole trajectories and the evaluation crop), overall and by tercile."""
    names = ("train", split)
    load = {k: Split.load(TrajectoryDataset(data / "burgers" / k, ["nu"], preload=True), "nu") for k in names}
    s = load[split]
    u, t, x, y = s.data["u"][:, :, 0], s.data["t"], s.data["x"], s.y.double()
    nt, nx = u.shape[1:]
    if not (2 < crop_t <= nt and 2 < crop_x <= nx):
        raise UserError(f"crop ({crop_t}, {crop_x}) must lie within the data ({nt}, {nx}) and exceed 2")
    t0 = (nt - crop_t) // 2
    est = {
        "whole trajectory": burgers_viscosity_lsq(u, t, x, s.data["length"]),
        f"evaluation crop ({crop_t} x {crop_x})": burgers_viscosity_lsq(
            u[:, t0 : t0 + crop_t, :crop_x], t[:, t0 : t0 + crop_t], x[:, :crop_x]
        ),
    }
    est["best constant (train)"] = best_constant("nmse", load["train"].y.double()).expand_as(y)
    edges = torch.quantile(y, torch.tensor([1 / 3, 2 / 3], dtype=y.dtype))
    bins = torch.bucketize(y, edges)
    out = {"split": split, "n": len(y), "tercile_edges": edges.tolist(), "rows": {}}
    for name, p in est.items():
        out["rows"][name] = {"nmse": nmse(p, y), "terciles": [nmse(p[bins == i], y[bins == i]) for i in range(3)]}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data directory holding burgers/{train,<split>}")
    ap.add_argument("--split", default="test")
    ap.add_argument("--crop-t", type=int, default=32)
    ap.add_argument("--crop-x", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here too")
    args = ap.parse_args(argv)
    try:
        res = run(args.data, args.split, args.crop_t, args.crop_x)
    except UserError as e:
        fail(e)
    lo, hi = res["tercile_edges"]
    print(f"Burgers viscosity from the residual, {res['n']} {res['split']} trajectories, no labels")
    print(f"\n| estimate | NMSE | nu < {lo:.3g} | {lo:.3g}-{hi:.3g} | nu > {hi:.3g} |\n|---|---|---|---|---|")
    for name, r in res["rows"].items():
        print(f"| {name} | {r['nmse']:.3g} | " + " | ".join(f"{v:.3g}" for v in r["terciles"]) + " |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
