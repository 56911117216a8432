"""``ssl-pde-eval task=regression ckpt=PATH``: frozen-encoder regression vs the supervised baseline.

Writes ``results.json`` and ``results.md`` (mean ± std over seeds, the labelled-set size stated) and
figures (predicted vs true parameter; a 2D PCA projection of the test representations coloured by the
parameter) to ``out_dir``; prints the table.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import ssl_pde.config  # noqa: F401
from ssl_pde.augment.views import LieViews
from ssl_pde.cli.common import UserError, hydra_entry, resolve_device
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.data.schema import SchemaError
from ssl_pde.eval.regression import Split, evaluate_seed

log = logging.getLogger("ssl_pde.eval")
METHODS = ("ssl_linear", "ssl_mlp", "supervised", "floor")
LABELS = {
    "ssl_linear": "SSL encoder + linear (ridge) head",
    "ssl_mlp": "SSL encoder + MLP head",
    "supervised": "supervised ResNet18 from scratch",
    "floor": "predict the mean (floor)",
}


def load_encoder(path: Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild an encoder exported by ssl-pde-pretrain (``encoder.pt``); returns it frozen and its export."""
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found")
    try:
        exp = torch.load(path, map_location="cpu", weights_only=False)
        enc = hydra.utils.instantiate(exp["encoder"])
        enc.load_state_dict(exp["state_dict"])
    except (KeyError, RuntimeError, TypeError, AttributeError) as e:
        raise UserError(f"{path} is not an encoder exported by ssl-pde-pretrain ({type(e).__name__}: {e})") from None
    enc.requires_grad_(False)
    return enc.to(device).eval(), exp


def summary_table(results: list[dict[str, Any]], n_labels: int, param: str, n_test: int) -> str:
    lines = [
        f"Regression of `{param}`: {n_labels} labelled trajectories, {n_test} test trajectories, "
        f"{len(results)} seeds (mean ± std).",
        "",
        "| method | NMSE | relative L1 | MSE |",
        "|---|---|---|---|",
    ]
    for m in METHODS:
        cells = [np.array([r[m][k] for r in results]) for k in ("nmse", "rel_l1", "mse")]
        lines.append(f"| {LABELS[m]} | " + " | ".join(f"{a.mean():.4g} ± {a.std():.2g}" for a in cells) + " |")
    ratio = np.array([r["supervised"]["nmse"] / r["ssl_linear"]["nmse"] for r in results])
    lines += [
        "",
        f"Supervised / SSL-linear NMSE ratio: {ratio.mean():.2f} ± {ratio.std():.2f} (above 1: SSL wins). "
        f"Supervised variant chosen on the validation split per seed: "
        f"{', '.join(r['supervised_choice'] for r in results)}.",
    ]
    return "\n".join(lines)


def plots(out: Path, test_y: torch.Tensor, run: dict[str, Any], param: str, log_axes: bool) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = test_y.numpy()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), constrained_layout=True)
    for ax, m in zip(axes, ("ssl_linear", "supervised"), strict=True):
        ax.scatter(y, run["preds"][m].numpy(), s=6, alpha=0.6)
        lo, hi = float(y.min()), float(y.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"true {param}")
        ax.set_ylabel(f"predicted {param}")
        ax.set_title(LABELS[m])
        if log_axes:
            ax.set_xscale("log")
            ax.set_yscale("log")
    p1 = out / "pred_vs_true.png"
    fig.savefig(p1, dpi=110)
    plt.close(fig)
    f = run["features"].double()
    f = (f - f.mean(0)) / f.std(0).clamp_min(1e-8)
    _, _, v = torch.pca_lowrank(f, q=2, center=True)
    xy = (f @ v).numpy()
    fig, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.log10(y) if log_axes else y, s=6, cmap="viridis")
    fig.colorbar(sc, label=f"log10 {param}" if log_axes else param)
    ax.set_title("test representations, first two principal components")
    p2 = out / "representations_pca.png"
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    return [p1, p2]


@dataclass
class EvalSetup:
    """What every task needs: the frozen encoder, its export, target, views, splits and output folder."""

    device: torch.device
    ckpt: Path
    encoder: torch.nn.Module
    exp: dict[str, Any]
    param: str
    log_target: bool
    views: LieViews
    splits: dict[str, Split]
    out: Path


def setup_task(cfg: DictConfig, split_names: tuple[str, ...]) -> EvalSetup:
    """Load the encoder named by ``cfg.ckpt`` and the splits of its PDE; choose the output folder."""
    device = resolve_device(cfg.device)
    ckpt = Path(cfg.ckpt)
    encoder, exp = load_encoder(ckpt, device)
    param = cfg.param or exp.get("probe_param")
    log_target = exp.get("probe_log", False) if cfg.log_target is None else bool(cfg.log_target)
    aug = dict(exp["augment"])  # exports name their view class; older 1D ones without _target_ are LieViews
    if cfg.eval_window is not None:
        if not str(aug.get("_target_", "")).endswith("NSViews"):
            raise UserError(f"eval_window={cfg.eval_window} applies to ns2d encoders only ({exp['pde']} given)")
        aug["eval_window"] = cfg.eval_window  # NSViews refuses an unknown one (one line, exit 2, via hydra_entry)
    views = hydra.utils.instantiate(aug) if "_target_" in aug else LieViews(**aug)
    root = Path(cfg.data.dir) / exp["pde"]
    splits = {s: Split.load(TrajectoryDataset(root / s, [param], preload=True), param) for s in split_names}
    out = Path(cfg.out_dir) if cfg.out_dir else ckpt.parent / f"eval_{cfg.task}"
    return EvalSetup(device, ckpt, encoder, exp, param, log_target, views, splits, out)


def write_results(
    out: Path, doc: dict[str, Any], title: str, table: str, figures: list[Path], wandb_cfg: DictConfig | None = None
) -> None:
    """results.json, results.md, the table and paths on stdout, and (when enabled) a W&B run."""
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    (out / "results.md").write_text(f"# {title}\n\n{table}\n")
    print(table)
    print(f"\nresults: {out / 'results.json'}, {out / 'results.md'}; figures: {', '.join(map(str, figures))}")
    if wandb_cfg is not None and wandb_cfg.enabled:
        run_dir = log_wandb(out, doc, table, figures, wandb_cfg)
        hint = f"  (upload later: wandb sync {run_dir})" if wandb_cfg.mode == "offline" else ""
        print(f"W&B run ({wandb_cfg.mode}): {run_dir}{hint}")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = float(v)
        elif isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v):
            out[key + "/mean"], out[key + "/std"] = v
    return out


def log_wandb(out: Path, doc: dict[str, Any], table: str, figures: list[Path], wcfg: DictConfig) -> str:
    """One W&B run per evaluation (offline by default, under ``out/wandb``): the config, per-seed and summary
    metrics, the markdown table and the figures. Linked to the pretraining run through its id when the
    encoder's run directory has one (``wandb_run_id.txt``)."""
    import wandb

    ckpt = Path(doc.get("ckpt", ""))
    id_file = ckpt.parent / "wandb_run_id.txt"
    config = {**doc["config"], "pretrain_wandb_id": id_file.read_text().strip() if id_file.is_file() else None}
    run = wandb.init(
        project=wcfg.project,
        dir=str(out),
        mode=wcfg.mode,
        job_type=f"eval_{doc['task']}",
        name=f"{doc['pde']}_{doc['task']}",
        config=config,
    )
    try:
        for seed, metrics in zip(doc["seeds"], doc["per_seed"], strict=True):
            run.log({"seed": seed, **_flatten(metrics)})
        run.summary.update(_flatten(doc.get("summary", {}), "summary/"))
        run.log({f"figures/{p.stem}": wandb.Image(str(p)) for p in figures})
        run.log({"results_md": wandb.Html(f"<pre>{table}</pre>")})
        return run.dir.rsplit("/files", 1)[0]
    finally:
        run.finish()


def run_regression(cfg: DictConfig) -> dict[str, Any]:
    st = setup_task(cfg, ("train", "valid", "test"))
    device, encoder, exp, param, log_target, views = st.device, st.encoder, st.exp, st.param, st.log_target, st.views
    pde, ckpt, out = exp["pde"], st.ckpt, st.out
    train, valid, test = st.splits["train"], st.splits["valid"], st.splits["test"]
    if cfg.n_labels < 8 or cfg.n_labels > len(train.y):
        raise UserError(f"n_labels={cfg.n_labels} must lie in [8, {len(train.y)}] (train trajectories)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs, results = [], []
    for seed in cfg.seeds:
        log.info(
            "seed %d: heads on %d labels, supervised baseline (%d steps x 2 variants)",
            seed,
            cfg.n_labels,
            cfg.supervised.steps,
        )
        r = evaluate_seed(
            encoder,
            lambda: hydra.utils.instantiate(exp["encoder"]),
            views,
            train,
            valid,
            test,
            cfg.n_labels,
            int(seed),
            log_target,
            device,
            cfg.supervised.steps,
            cfg.supervised.batch,
            cfg.supervised.lr,
        )
        runs.append(r)
        results.append(r["metrics"])
    table = summary_table(results, cfg.n_labels, param, len(test.y))
    figs = plots(out, test.y, runs[0], param, log_target)
    doc = {
        "task": cfg.task,
        "pde": pde,
        "param": param,
        "log_target": log_target,
        "n_labels": cfg.n_labels,
        "n_test": len(test.y),
        "seeds": list(cfg.seeds),
        "ckpt": str(ckpt),
        "per_seed": results,
        "summary": {
            m: {
                k: [float(np.mean([r[m][k] for r in results])), float(np.std([r[m][k] for r in results]))]
                for k in ("nmse", "rel_l1", "mse")
            }
            for m in METHODS
        },
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seconds": time.perf_counter() - t0,
    }
    write_results(out, doc, f"Frozen-encoder regression: {pde}", table, figs, cfg.wandb)
    return doc


TIMESTEP_METRICS = ("rollout_nmse", "rollout_nmse_sum", "rollout_mse", "one_step_nmse", "one_step_mse")
"""Reported per conditioning variant, in table order (ssl_pde.metrics.rollout_nmse and one_step_metrics)."""


def run_timestep(cfg: DictConfig) -> dict[str, Any]:
    """Time-stepping with conditioning none / true parameter / SSL representation, over seeds."""
    from ssl_pde.eval.timestep import VARIANTS, evaluate_timestep_seed, rollout_start
    from ssl_pde.models.timestepper import STEPPERS, STEPPERS_2D

    ts = cfg.timestep
    if ts.arch not in STEPPERS:
        raise UserError(f"unknown timestep.arch {ts.arch!r} (available: {', '.join(STEPPERS)})")
    if ts.ssl_dims is not None and ts.ssl_dims < 1:
        raise UserError(f"timestep.ssl_dims must be a positive integer or null, got {ts.ssl_dims}")
    st = setup_task(cfg, ("train", "test"))
    device, encoder, exp, param, log_target, views = st.device, st.encoder, st.exp, st.param, st.log_target, st.views
    train, test, out = st.splits["train"], st.splits["test"], st.out
    nt, is_2d = train.data["u"].shape[1], train.data["u"].dim() == 5
    if is_2d != (ts.arch in STEPPERS_2D):
        need = ", ".join(STEPPERS_2D if is_2d else [a for a in STEPPERS if a not in STEPPERS_2D])
        raise UserError(f"timestep.arch={ts.arch} does not fit {'2D' if is_2d else '1D'} data (use one of: {need})")
    start = rollout_start(views, train, ts.history)
    if start + ts.future > nt:
        why = f"timestep.history={ts.history}" + (f", encoder window {views.crop_t}" if is_2d else "")
        raise UserError(
            f"the rollout starts at frame {start} ({why}) and timestep.future={ts.future} exceeds the {nt} frames"
        )
    n = min(cfg.n_labels, len(train.y))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results, first = [], None
    for seed in cfg.seeds:
        rng = np.random.default_rng(int(seed))
        lab = train.subset(np.sort(rng.choice(len(train.y), n, replace=False)))
        log.info("seed %d: %d training trajectories, 3 variants x %d steps", seed, n, ts.steps)
        r = evaluate_timestep_seed(
            encoder,
            views,
            lab,
            test,
            int(seed),
            log_target,
            device,
            ts.history,
            ts.future,
            ts.steps,
            ts.batch,
            ts.lr,
            ts.width,
            ts.arch,
            ts.cond_hidden,
            ts.ssl_dims,
        )
        results.append(r["metrics"])
        first = first or r["rollouts"]
    k = results[0]["none"]["frames"]
    lines = [
        f"Time-stepping ({exp['pde']}): {n} training trajectories, {len(test.y)} test trajectories, rollout of "
        f"{k} frames from frame {start} ({ts.history} in, {ts.future} out per step), {len(results)} seeds; "
        f"stepper {ts.arch} (width {ts.width}, {ts.steps} steps), SSL condition "
        f"{'all dimensions' if ts.ssl_dims is None else f'{ts.ssl_dims} principal components'}.",
        "",
        "| conditioning | rollout_nmse (mean over frames) | rollout_nmse_sum (over frames) | rollout_mse "
        "| one_step_nmse | one_step_mse |",
        "|---|---|---|---|---|---|",
    ]
    names = {"none": "none", "param": f"true {param}", "ssl": "frozen SSL representation"}
    for v in VARIANTS:
        cells = [np.array([r[v][k] for r in results]) for k in TIMESTEP_METRICS]
        lines.append(f"| {names[v]} | " + " | ".join(f"{a.mean():.4g} ± {a.std():.2g}" for a in cells) + " |")
    table = "\n".join(lines)
    fig = _plot_rollouts(out / "rollouts.png", first)
    doc = {
        "task": "timestep",
        "pde": exp["pde"],
        "param": param,
        "n_train": n,
        "n_test": len(test.y),
        "rollout_start": start,
        "seeds": list(cfg.seeds),
        "ckpt": str(st.ckpt),
        "per_seed": results,
        "summary": {
            v: {
                k: [float(np.mean([r[v][k] for r in results])), float(np.std([r[v][k] for r in results]))]
                for k in TIMESTEP_METRICS
            }
            for v in VARIANTS
        },
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seconds": time.perf_counter() - t0,
    }
    write_results(out, doc, f"Conditioned time-stepping: {exp['pde']}", table, [fig], cfg.wandb)
    return doc


def _plot_rollouts(path: Path, rollouts: dict[str, torch.Tensor]) -> Path:
    """1D: space-time images of the first test rollout per variant. 2D: the first field (smoke for ns2d)
    of the first test trajectory at the first and last predicted frames, per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["truth", "none", "param", "ssl"]
    if rollouts["truth"].dim() == 3:  # (n, K, X)
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), constrained_layout=True)
        vmax = float(rollouts["truth"][0].abs().max())
        for ax, k in zip(axes, keys, strict=True):
            ax.imshow(rollouts[k][0].numpy(), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(k if k != "truth" else "truth (test trajectory)")
            ax.set_xlabel("x index")
            ax.set_ylabel("predicted frame")
    else:  # (n, K, C, X, Y)
        kk = rollouts["truth"].shape[1]
        fig, axes = plt.subplots(2, 4, figsize=(13, 6.4), constrained_layout=True)
        lo, hi = float(rollouts["truth"][0, :, 0].min()), float(rollouts["truth"][0, :, 0].max())
        for col, k in enumerate(keys):
            for row, f in enumerate((0, kk - 1)):
                ax = axes[row, col]
                ax.imshow(rollouts[k][0, f, 0].T.numpy(), origin="lower", cmap="viridis", vmin=lo, vmax=hi)
                ax.set_title(f"{k}, predicted frame {f + 1}")
                ax.set_xticks([])
                ax.set_yticks([])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Dispatch on ``cfg.task``."""
    if cfg.task == "regression":
        return run_regression(cfg)
    if cfg.task == "timestep":
        return run_timestep(cfg)
    raise UserError(f"unknown task {cfg.task!r} (available: regression, timestep)")


main = hydra_entry("eval", run_task, (SchemaError, ValueError))

if __name__ == "__main__":
    main()
