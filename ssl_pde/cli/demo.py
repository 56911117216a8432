"""``ssl-pde-demo``: the main job at small scale, on a CPU in minutes.

Stages: generate a small Burgers dataset with a viscosity per trajectory (train/valid/test), validate
every shard, re-solve a few trajectories with the independent scipy Radau solver to show the agreement,
plot trajectories; pretrain a VICReg encoder on Lie-symmetry views (``configs/experiment/burgers_demo.yaml``);
regress the viscosity with a small labelled set under the evaluation protocol (``ssl-pde-eval``: the frozen
encoder with linear and MLP heads, the encoder fine-tuned, a random-init control, the same network trained
from scratch, the best-constant floor; every choice on valid, test read once, 1 pretraining seed x 3 label
draws); print the table, the paired ratios with their intervals, and where the figures are.

A pipeline of the command lines: generation and the solver check run as ``ssl-pde-generate`` and
``ssl-pde-verify`` (subprocesses), so the training package never imports the solvers.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ssl_pde.core.cli import hydra_entry
from ssl_pde.core.errors import UserError
from ssl_pde.core.paths import check_output_dir
from ssl_pde.data.schema import list_shards, validate_shard

log = logging.getLogger("ssl_pde.demo")
GENERATE, VERIFY = "data_gen.cli.generate", "data_gen.cli.verify"  # run as command lines, never imported


def plot_trajectories(split_dir: Path, out: Path, n: int = 4) -> Path:
    """Space-time plots of ``n`` trajectories spanning the viscosity range, plus their last frames.

    Args:
        split_dir: directory of shards (``u``: (N, T, 1, X)).
        out: PNG path.
    """
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    us, ts, xs, nus = [], [], [], []
    for p in list_shards(split_dir):
        with h5py.File(p) as f:
            us.append(f["u"][:, :, 0])
            ts.append(f["t"][...])
            xs.append(f["x"][...])
            nus.append(f["params/nu"][...])
    u, t, x, nu = (np.concatenate(a) for a in (us, ts, xs, nus))
    pick = np.argsort(nu)[np.linspace(0, len(nu) - 1, n).astype(int)]
    fig, axes = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3.2), constrained_layout=True)
    vmax = float(np.abs(u[pick]).max())
    for ax, i in zip(axes[:-1], pick, strict=True):
        ax.imshow(
            u[i],
            origin="lower",
            aspect="auto",
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
            extent=(x[i, 0], x[i, -1], t[i, 0], t[i, -1]),
        )
        ax.set_title(f"nu = {nu[i]:.3g}")
        ax.set_xlabel("x")
        ax.set_ylabel("t")
    for i in pick:
        axes[-1].plot(x[i], u[i, -1], label=f"nu = {nu[i]:.3g}")
    axes[-1].set_title(f"u(x, t = {t[pick[0], -1]:.2g})")
    axes[-1].legend(fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _overrides(node: DictConfig, prefix: str) -> list[str]:
    """``prefix.key=value`` for every scalar of a config node (``_target_`` left out), as a command line takes."""
    out = []
    for k, v in OmegaConf.to_container(node, resolve=True).items():
        if k == "_target_" or isinstance(v, dict | list):
            continue
        out.append(f"{prefix}{k}={_value(v)}")
    return out


def _value(v: object) -> str:
    """A scalar as an override value: null, true/false, numbers and words as they are."""
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _command(module: str, args: list[str]) -> None:
    """Run a project command line (``python -m module args``); its output streams through, and its one-line error
    (exit status 2) becomes this command's."""
    res = subprocess.run([sys.executable, "-m", module, *args], stderr=subprocess.PIPE, text=True)
    if res.returncode == 2:
        raise UserError(res.stderr.strip().splitlines()[-1].removeprefix("error: "))
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise RuntimeError(f"{module} failed with exit status {res.returncode}")
    sys.stderr.write(res.stderr)


def run_demo(cfg: DictConfig) -> dict:
    """Run every stage; return a summary dict (also printed).

    Generation and the solver check run as the ``ssl-pde-generate`` and ``ssl-pde-verify`` command lines (the
    demo is a pipeline of the commands and imports no solver code); pretraining and evaluation run in-process.
    """
    t0 = time.perf_counter()
    out_dir = Path(cfg.out_dir)
    check_output_dir(out_dir, "out_dir")
    solver = _overrides(cfg.solver, "solver.")
    common = [f"pde={cfg.pde.name}", f"device={cfg.device}", f"seed={cfg.seed}", *solver]
    gen_keys = ("shard_size", "batch_size", "max_time_error", "max_reject_fraction", "overwrite", "progress")
    counts = {}
    for split, n in cfg.splits.items():
        keys = [f"{k}={_value(cfg[k])}" for k in gen_keys]
        _command(GENERATE, [*common, *keys, f"split={split}", f"num_samples={n}", f"out_dir={out_dir}"])
        shards = [validate_shard(p) for p in list_shards(out_dir / cfg.pde.name / split)]
        counts[split] = sum(s.n for s in shards)
    check = out_dir / "verify_reference.json"
    _command(VERIFY, [*common, "tables=[reference]", f"n_trajectories={cfg.n_reference}", f"json_out={check}"])
    agree = json.loads(check.read_text())
    fig = plot_trajectories(out_dir / cfg.pde.name / "train", out_dir / "figures" / "trajectories.png")
    nus = np.concatenate([validate_shard(p).params["nu"] for p in list_shards(out_dir / cfg.pde.name / "train")])
    summary: dict = {
        "data": {k: int(v) for k, v in counts.items()},
        "nu_range": [float(nus.min()), float(nus.max())],
        "radau_max_rel_l2": agree["reference"]["max_rel_l2"],
        "figure": str(fig),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print()
    print(
        f"Burgers data in {out_dir}/{cfg.pde.name}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" trajectories, nu in [{nus.min():.3g}, {nus.max():.3g}]"
    )
    print(
        f"Solver vs independent scipy Radau (rtol=atol=1e-10) on {cfg.n_reference} trajectories, "
        f"t <= {agree['t_end']:g}: max relative L2 difference {summary['radau_max_rel_l2']:.2e}"
    )
    print(f"Figure: {fig}")

    from hydra import compose

    from ssl_pde.cli.eval import run_regression
    from ssl_pde.cli.pretrain import pretrain

    run_dir = out_dir / "pretrain"
    pcfg = compose(
        "pretrain", overrides=[*cfg.pretrain, f"data.dir={out_dir}", f"run_dir={run_dir}", f"seed={cfg.seed}"]
    )
    t1 = time.perf_counter()
    metrics = pretrain(pcfg)
    summary["pretrain_seconds"] = round(time.perf_counter() - t1, 1)
    summary["pretrain_probe_nmse"] = metrics.get("val/probe_nmse")
    ecfg = compose(
        "eval",
        overrides=[
            *cfg.eval,
            f"ckpt={run_dir / 'encoder.pt'}",
            f"data.dir={out_dir}",
            f"out_dir={out_dir / 'eval'}",
            f"device={cfg.device}",
        ],
    )
    print()
    doc = run_regression(ecfg)
    summary["eval"] = {k: doc["result"][k] for k in ("summary", "comparisons", "budget")}
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\nPretraining logs: {run_dir} (W&B offline run: wandb sync {run_dir}/wandb/offline-run-*)")
    for key in ("supervised/ssl_linear", "supervised/ssl_finetune"):
        c = doc["result"]["comparisons"].get(key)
        if c:
            print(
                f"{key}: {c['metric']} ratio {c['ratio']:.2f}, 95 % interval [{c['low']:.2f}, {c['high']:.2f}] over "
                f"{c['interval_over']}: {c['verdict']}"
            )
    print(f"Done in {summary['seconds']} s.")
    return summary


main = hydra_entry("demo", run_demo, "interrupted: rerun ssl-pde-demo to resume")

if __name__ == "__main__":
    main()
