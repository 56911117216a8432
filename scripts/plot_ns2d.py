"""Figures of the 2D Navier-Stokes + buoyant smoke data and its symmetry views.

    python scripts/plot_ns2d.py --out docs/figures                 # 128 x 128 and 32 x 32, ~5 min on one core
    python scripts/plot_ns2d.py --grids 32 --out /tmp/figs         # the coarse grid only, seconds
    python scripts/plot_ns2d.py --data runs/reproduce_cpu/ns2d/data --grids   # data diagnostics only

``ns2d_smoke.png``: smoke snapshots of three trajectories (seeds whose buoyancy is near the low end, the
middle and the high end of U(0.2, 0.5)) at four stored times, on each requested grid; the same seed gives
the same initial smoke on every grid, so the rows show what a coarser grid keeps of the plume.
``views_ns2d.png``: the first frame of three ``coords`` views (configs/augment/ns2d.yaml strengths, whole
box) of one coarse-grid trajectory, smoke and vertical velocity drawn at their transformed coordinates
(x', y'). Every trajectory comes from the project's generator (configs/solver/ns2d.yaml, the grid
overridden with the CFL number kept: dt_max = 0.025 * 128 / n).

With ``--data DIR`` (an ``ssl-pde-generate`` output root), also ``ns2d_energy.png`` and a printed check of
how much of the buoyancy the data carries: the rms speed per stored frame against time, coloured by
buoyancy (the flow starts from rest and its speed decays over the stored window, so a window's speed
depends on its time as much as on b), and the valid MSE of a ridge regression (the best strength on valid:
an optimistic bound; the test split is never read, since this check informs choices) from hand-crafted
features of 16 frames (per-frame rms speed, its log, and the
smoke-weighted vertical velocity), for the first and the central 16 frames (the evaluation windows
``eval_window=start`` and ``center`` of the encoder) and several labelled-set sizes drawn from ``train``
as ``ssl-pde-eval`` draws them (3 draws), beside the floor (the mean: the best constant for MSE).
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
    # every field, whatever the config selects: the figure shows the smoke beside vy
    views = instantiate(acfg, crop_x=n, crop_y=n, relative_coords=False, fields=["smoke", "vx", "vy"])
    v = views.view(u, t, x, y, torch.Generator().manual_seed(0)).numpy()
    # the same crops (drawn first from the same generator state) without any group element
    ref = views.without_symmetries().view(u, t, x, y, torch.Generator().manual_seed(0)).numpy()
    ct = views.crop_t
    q = {name: i * ct for i, name in enumerate(("t", "x", "y", *views.fields))}
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


def _read(root: Path, split: str, frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u (N, T, 3, X, Y) (the first ``frames``), t (N, T) and buoyancy (N,) of every shard of a split."""
    import h5py

    from ssl_pde.data.schema import list_shards, validate_shard

    us, ts, bs = [], [], []
    for f in list_shards(root / "ns2d" / split):
        validate_shard(f, load_values=False)  # refuses incomplete or wrong-version shards
        with h5py.File(f, "r") as h:
            us.append(h["u"][:, :frames])
            ts.append(h["t"][:, :frames])
            bs.append(h["params/buoyancy"][:])
    if not us:
        raise SystemExit(f"error: no shards under {root / 'ns2d' / split}")
    return np.concatenate(us), np.concatenate(ts), np.concatenate(bs)


def _speed(u: np.ndarray) -> np.ndarray:
    """rms speed per trajectory and frame: u (N, T, 3, X, Y) -> (N, T)."""
    return np.sqrt((u[:, :, 1] ** 2 + u[:, :, 2] ** 2).mean((2, 3)))


def data_diagnostics(root: Path, out: Path, labels=(64, 256, 1024), seeds=(0, 1, 2)) -> Path:
    from ssl_pde.augment.ns_views import eval_window_start
    from ssl_pde.eval.regression import ridge_select

    u, t, b = _read(root, "valid")  # a diagnostic that informs choices: the valid split, never test
    sp = _speed(u)
    fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for i in range(min(len(b), 96)):
        ax.plot(t[i], sp[i], color=cmap((b[i] - 0.2) / 0.3), lw=0.8, alpha=0.7)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0.2, 0.5))
    fig.colorbar(sm, ax=ax, label="buoyancy b")
    ax.set_xlabel("t")
    ax.set_ylabel("rms speed")
    ax.set_title(f"ns2d valid trajectories ({u.shape[-2]} x {u.shape[-1]}): speed vs time by buoyancy")
    path = out / "ns2d_energy.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    lo, hi = sp[b < 0.3], sp[b >= 0.4]
    print(
        f"rms speed, first / last stored frame: b < 0.3: {lo[:, 0].mean():.3f} / {lo[:, -1].mean():.3f}; "
        f"b >= 0.4: {hi[:, 0].mean():.3f} / {hi[:, -1].mean():.3f}"
    )

    def feats(u: np.ndarray) -> torch.Tensor:
        s = _speed(u)
        lift = (u[:, :, 2] * u[:, :, 0]).mean((2, 3))
        return torch.from_numpy(np.concatenate([s, np.log(s), lift], 1))

    ut, _, bt = _read(root, "train")
    y_valid = torch.from_numpy(b)
    ct, nt = 16, u.shape[1]
    print(f"| frames (of {nt}) | labels | hand-crafted + ridge, valid MSE | the mean (best constant), valid MSE |")
    print("|---|---|---|---|")
    for name in ("start", "center"):  # the windows of NSViews(eval_window=...)
        t0 = eval_window_start(name, nt, ct)
        f_train, f_valid = feats(ut[:, t0 : t0 + ct]), feats(u[:, t0 : t0 + ct])
        for n in labels:
            if n > len(bt):
                continue
            mses, floors = [], []
            for s in seeds:  # labelled subsets drawn as ssl-pde-eval draws them
                idx = np.sort(np.random.default_rng(s).choice(len(bt), n, replace=False))
                y_lab = torch.from_numpy(bt[idx])
                # the best of the ridge strengths on valid: an optimistic bound for hand-crafted features
                lam, scores = ridge_select(
                    f_train[idx], y_lab, f_valid, y_valid, (1e-4, 1e-3, 1e-2, 1e-1, 1.0), log_target=False, metric="mse"
                )
                mses.append(scores[lam])
                floors.append(float(((y_lab.mean() - y_valid) ** 2).mean()))
            print(
                f"| {t0}-{t0 + ct - 1} ({name}) | {n} | {np.mean(mses):.5f} ± {np.std(mses):.5f} "
                f"| {np.mean(floors):.5f} |"
            )
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", nargs="*", type=int, default=[128, 32], help="generate and plot (none: skip)")
    ap.add_argument("--data", type=Path, default=None, help="ssl-pde-generate output root with ns2d train/valid")
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.grids:
        path, batches = smoke_figure(args.grids, args.out)
        print(path)
        n = min(args.grids)
        print(views_figure(batches[n], _configs(n)[1], args.out, n))
    if args.data is not None:
        print(data_diagnostics(args.data, args.out))


if __name__ == "__main__":
    main()
