"""Figures of the 2D Navier-Stokes + buoyant smoke data and its symmetry views.

    python scripts/plot_ns2d.py --out docs/figures                 # 128 x 128 and 32 x 32, ~5 min on one core
    python scripts/plot_ns2d.py --grids 32 --out /tmp/figs         # the coarse grid only, seconds

``ns2d_smoke.png``: smoke snapshots of three trajectories (seeds whose buoyancy is near the low end, the
middle and the high end of U(0.2, 0.5)) at four stored times, on each requested grid; the same seed gives
the same initial smoke on every grid, so the rows show what a coarser grid keeps of the plume.
``views_ns2d.png``: the first frame of three ``coords`` views (configs/augment/ns2d.yaml strengths, whole
box) of one coarse-grid trajectory, smoke and vertical velocity drawn at their transformed coordinates
(x', y'). Every trajectory comes from the project's generator (configs/solver/ns2d.yaml, the grid
overridden with the CFL number kept: dt_max = 0.025 * 128 / n).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ssl_pde import CONFIG_DIR

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _configs(n: int):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        g = compose("generate", overrides=["pde=ns2d", f"solver.nx={n}", f"solver.ny={n}", f"solver.dt_max={3.2 / n}"])
        a = compose("pretrain", overrides=["experiment=ns2d_vicreg"]).augment
    return g.solver, a


def pick_seeds(solver_cfg, targets=(0.2, 0.35, 0.5), pool: int = 200) -> list[int]:
    """Seeds (from 0..pool-1) whose sampled buoyancy is nearest to each target."""
    b = instantiate(solver_cfg).sample_params(np.arange(pool))["buoyancy"]
    return [int(np.argmin(np.abs(b - tb))) for tb in targets]


def smoke_figure(grids: list[int], out: Path) -> tuple[Path, dict[int, object]]:
    seeds = pick_seeds(_configs(grids[0])[0])
    batches = {}
    for n in grids:
        print(f"generating {len(seeds)} trajectories on {n} x {n} ...", flush=True)
        batches[n] = instantiate(_configs(n)[0]).generate(np.array(seeds))
    frames = [0, 18, 37, 55]
    rows = [(n, j) for j in range(len(seeds)) for n in grids]
    fig, axes = plt.subplots(
        len(rows), len(frames), figsize=(2.6 * len(frames), 2.5 * len(rows)), constrained_layout=True
    )
    axes = np.atleast_2d(axes)
    for r, (n, j) in enumerate(rows):
        b = batches[n]
        for c, k in enumerate(frames):
            ax = axes[r, c]
            # u: (N, T, 3, X, Y); show smoke with y upwards
            ax.imshow(b.u[j, k, 0].T, origin="lower", cmap="magma", vmin=0, extent=(0, 32, 0, 32))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {b.t[j, k]:.0f}")
            if c == 0:
                ax.set_ylabel(f"b = {b.params['buoyancy'][j]:.3f}\n{n} x {n}")
    fig.suptitle("ns2d smoke (project generator): buoyancy low / mid / high, per grid")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ns2d_smoke.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path, batches


def views_figure(batch, acfg, out: Path, n: int) -> Path:
    u = torch.from_numpy(batch.u[:1]).repeat(3, 1, 1, 1, 1)
    t, x, y = (torch.from_numpy(a[:1]).repeat(3, 1) for a in (batch.t, batch.x, batch.y))
    views = instantiate(acfg, crop_x=n, crop_y=n, relative_coords=False)
    v = views.view(u, t, x, y, torch.Generator().manual_seed(0)).numpy()
    # the same crops (drawn first from the same generator state) without any group element
    ref = views.without_symmetries().view(u, t, x, y, torch.Generator().manual_seed(0)).numpy()
    ct = views.crop_t
    q = {name: i * ct for i, name in enumerate(("t", "x", "y", "smoke", "vx", "vy"))}
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.4), constrained_layout=True)
    for row, (field, cmap) in enumerate((("smoke", "magma"), ("vy", "RdBu_r"))):
        ax = axes[row, 0]
        ax.pcolormesh(ref[0, q["x"]], ref[0, q["y"]], ref[0, q[field]], cmap=cmap, shading="auto")
        ax.set_aspect("equal")
        ax.set_title(f"view 1 untransformed: {field}, t = {ref[0, q['t']].mean():.1f}")
        for j in range(3):
            ax = axes[row, j + 1]
            ax.pcolormesh(v[j, q["x"]], v[j, q["y"]], v[j, q[field]], cmap=cmap, shading="auto")
            ax.set_aspect("equal")
            ax.set_title(f"view {j + 1}: {field}' at (x', y'), t' = {v[j, q['t']].mean():.1f}")
    gens = ", ".join(f"{k} {val:g}" for k, val in acfg.strengths.items() if val > 0)
    fig.suptitle(f"ns2d coords views ({n} x {n}, whole box, first of {ct} frames); generators (max |eps|): {gens}")
    path = out / "views_ns2d.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", nargs="+", type=int, default=[128, 32])
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = ap.parse_args(argv)
    path, batches = smoke_figure(args.grids, args.out)
    print(path)
    n = min(args.grids)
    print(views_figure(batches[n], _configs(n)[1], args.out, n))


if __name__ == "__main__":
    main()
