"""Figures of Lie-symmetry views: per PDE, one generated trajectory and three views in each mode.

    python scripts/plot_views.py --out docs/figures

``coords`` views are drawn at their transformed coordinates (pcolormesh over (x', t')), so the
geometric action of the group is visible; ``resample`` views are the transformed solution on a regular
grid. Uses the project's generator (configs/solver/<pde>.yaml, Burgers on a cheaper grid) and the
strengths of configs/augment/<pde>.yaml.
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

SOLVER_OVERRIDES = {"burgers": ["solver.solver_nx=512", "solver.dt_max=2e-3", "solver.nu_min=2e-2"]}
CROPS = {"burgers": (96, 192), "kdv": (96, 192), "ks": (96, 192)}


def plot(pde: str, out: Path, seed: int = 3) -> Path:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        gcfg = compose("generate", overrides=[f"pde={pde}", *SOLVER_OVERRIDES.get(pde, [])])
        acfg = compose(f"augment/{pde}", overrides=[]).augment
    batch = instantiate(gcfg.solver).generate(np.array([seed]))
    u = torch.from_numpy(batch.u[:, :, 0]).repeat(3, 1, 1)
    t = torch.from_numpy(batch.t).repeat(3, 1)
    x = torch.from_numpy(batch.x).repeat(3, 1)
    length = torch.from_numpy(batch.params["domain_length"]).repeat(3)
    ct, cx = CROPS[pde]
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), constrained_layout=True)
    for row, mode in enumerate(("coords", "resample")):
        views = instantiate(
            acfg,
            mode=mode,
            crop_t=ct,
            crop_x=cx,
            relative_coords=False,
            strengths={k: v for k, v in acfg.strengths.items() if k != "projective"},
        )
        v = views.view(u, t, x, length, torch.Generator().manual_seed(10 + row)).numpy()
        ax = axes[row, 0]
        ax.imshow(
            batch.u[0, :, 0],
            origin="lower",
            aspect="auto",
            cmap="RdBu_r",
            extent=(x[0, 0], x[0, -1], t[0, 0], t[0, -1]),
        )
        ax.set_title(f"{pde}: generated trajectory" if row == 0 else "same trajectory")
        ax.set_xlabel("x")
        ax.set_ylabel("t")
        for j in range(3):
            ax = axes[row, j + 1]
            if mode == "coords":
                ax.pcolormesh(v[j, 1], v[j, 0], v[j, 2], cmap="RdBu_r", shading="auto")
                ax.set_xlabel("x'")
                ax.set_ylabel("t'")
                ax.set_title(f"coords view {j + 1} at (x', t')")
            else:
                ax.imshow(v[j, 0], origin="lower", aspect="auto", cmap="RdBu_r")
                ax.set_xlabel("x index")
                ax.set_ylabel("t index")
                ax.set_title(f"resample view {j + 1}")
    gens = ", ".join(f"{k} {v:g}" for k, v in acfg.strengths.items() if v > 0 and k != "projective")
    fig.suptitle(f"{pde}: crops {ct}x{cx}; generators (max |eps|): {gens}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"views_{pde}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdes", nargs="+", default=["burgers", "kdv", "ks"])
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = ap.parse_args(argv)
    for pde in args.pdes:
        print(plot(pde, args.out))


if __name__ == "__main__":
    main()
