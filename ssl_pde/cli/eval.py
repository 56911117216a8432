"""``ssl-pde-eval task=<regression,timestep,pde_id> ckpt=PATH``: a thin shell over :mod:`ssl_pde.eval`.

Parses the config into :class:`~ssl_pde.eval.config.EvalConfig`, loads the encoders and splits
(:func:`~ssl_pde.eval.setup.load_inputs`), runs the protocol (:func:`~ssl_pde.eval.protocol.evaluate_regression`,
:func:`~ssl_pde.eval.timestep.evaluate_timestep` or, for a mixed run's exports,
:func:`~ssl_pde.eval.pde_id.evaluate_pde_id`), and writes ``results.json``, ``results.md``, figures and
a W&B run (:mod:`ssl_pde.eval.report`) to ``out_dir``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import ssl_pde.config  # noqa: F401
from ssl_pde.core.cli import hydra_entry, resolve_device
from ssl_pde.core.errors import UserError
from ssl_pde.core.paths import check_output_dir
from ssl_pde.eval import report
from ssl_pde.eval.baseline_cache import BaselineCache, context_of
from ssl_pde.eval.config import EvalConfig, to_eval_config
from ssl_pde.eval.setup import EvalInputs, load_inputs
from ssl_pde.pdes import PDES


def _doc(cfg: EvalConfig, raw: DictConfig, inp: EvalInputs, result: dict[str, Any], t0: float) -> tuple[dict, dict]:
    """results.json's document (the result without its figure data) and the figure data."""
    figures = result.pop("figures")
    doc = {
        "task": cfg.task,
        "pde": inp.pde,
        "param": inp.param,
        "log_target": inp.log_target,
        "ckpts": [str(c) for c in inp.ckpts],
        "pretrain_seeds": inp.pretrain_seeds,
        "n_valid": len(inp.splits["valid"]),
        "n_test": len(inp.splits["test"]),
        "corruption": inp.corruption,
        "transfer": inp.transfer,
        "result": result,
        "config": OmegaConf.to_container(raw, resolve=True),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return doc, figures


def _inputs(cfg: EvalConfig) -> EvalInputs:
    return load_inputs(
        [Path(c) for c in cfg.ckpts],
        Path(cfg.data.dir),
        resolve_device(cfg.device),
        param=cfg.param,
        log_target=cfg.log_target,
        eval_window=cfg.eval_window,
        corrupt=cfg.corrupt,
        transfer=cfg.transfer,
        eval_crops=cfg.eval_crops,
    )


def _cache(cfg: EvalConfig) -> BaselineCache | None:
    """The baseline cache, its path checked and its code digest taken before any data is read or network trained."""
    if cfg.regression.baseline_cache is None:
        return None
    root = Path(cfg.regression.baseline_cache)
    check_output_dir(root, "regression.baseline_cache")
    check_output_dir(root / "supervised", "regression.baseline_cache")
    return BaselineCache(root)


def run_regression(raw: DictConfig) -> dict[str, Any]:
    """Regression of the encoders' probe parameter: every method, choices on valid, test read once."""
    from ssl_pde.eval.protocol import evaluate_regression

    t0 = time.perf_counter()
    cfg = to_eval_config(raw)
    out = _out(cfg)
    cache = _cache(cfg)
    inp = _inputs(cfg)
    if cache is not None:
        cache.context = context_of(inp.exports[0], cfg.eval_window, cfg.eval_crops)
    ext = (inp.transfer or {}).get("extrapolate")
    if ext is not None and cfg.regression.n_labels > ext["n"]["train"]:
        raise UserError(
            f"regression.n_labels={cfg.regression.n_labels}: only {ext['n']['train']} train trajectories have "
            f"{inp.param} <= {ext['threshold']:.6g}, the train split's {ext['q']:g}-quantile "
            f"(transfer.extrapolate={ext['q']:g})"
        )
    result = evaluate_regression(
        inp.encoders,
        inp.fresh,
        inp.views,
        inp.splits,
        cfg.regression,
        log_target=inp.log_target,
        device=inp.device,
        clamp_margin=cfg.transfer.clamp_margin,
        encoder_seeds=inp.encoder_seeds(),
        cache=cache,
    )
    doc, figures = _doc(cfg, raw, inp, result, t0)
    doc["n_labels"] = cfg.regression.n_labels
    out.mkdir(parents=True, exist_ok=True)
    figs = report.regression_plots(out, inp.splits["test"].y, figures, inp.param, inp.log_target)
    figs.append(report.comparison_plot(out / "comparisons.png", result))
    notes = ([] if cfg.corrupt.is_clean else [_messy(cfg)]) + _moved(inp)
    title = f"Regression: {inp.pde}" + (f" ({'; '.join(notes)})" if notes else "")
    report.write_results(out, doc, title, report.regression_table(doc), figs, cfg.wandb)
    return doc


def run_timestep(raw: DictConfig) -> dict[str, Any]:
    """Time-stepping conditioned on nothing / the true parameters / the SSL representation."""
    from ssl_pde.eval.timestep import check_timestep, evaluate_timestep
    from ssl_pde.models.timestepper import STEPPERS

    t0 = time.perf_counter()
    cfg = to_eval_config(raw)
    if not cfg.corrupt.is_clean:
        raise UserError(
            f"{_messy(cfg)}: corrupted observations are supported for task=regression only (a stepper's inputs and "
            "its targets are frames of one trajectory; docs/evaluation.md)"
        )
    if not cfg.transfer.is_plain:
        raise UserError(
            f"{cfg.transfer.words()}: transfer evaluations are supported for task=regression only (a stepper has no "
            "scalar target to extrapolate, and its rollouts are scored on its own grid; docs/evaluation.md)"
        )
    if list(cfg.eval_crops) != [1, 1]:
        raise UserError(
            f"eval_crops={list(cfg.eval_crops)}: several evaluation crops are supported for task=regression only (a "
            "stepper is conditioned on the representation of its first window)"
        )
    ts = cfg.timestep
    if ts.arch not in STEPPERS:
        raise UserError(f"unknown timestep.arch {ts.arch!r} (available: {', '.join(STEPPERS)})")
    if ts.ssl_dims is not None and ts.ssl_dims < 1:
        raise UserError(f"timestep.ssl_dims must be a positive integer or null, got {ts.ssl_dims}")
    bad = [v for v in ts.variants if v not in ("none", "param", "ssl")]
    if bad:
        raise UserError(f"unknown timestep variant {bad[0]!r} (choose from: none, param, ssl)")
    out = _out(cfg)
    inp = _inputs(cfg)
    dyn = PDES[inp.pde].dynamics_params if inp.pde in PDES else ()
    check_timestep(inp.views, inp.splits["train"], ts)
    result = evaluate_timestep(inp.encoders, inp.views, inp.splits, ts, dyn, inp.device)
    doc, figures = _doc(cfg, raw, inp, result, t0)
    doc["n_train"] = min(ts.n_train, len(inp.splits["train"]))
    out.mkdir(parents=True, exist_ok=True)
    fig = report.plot_rollouts(out / "rollouts.png", figures)
    report.write_results(
        out, doc, f"Conditioned time-stepping: {inp.pde}", report.timestep_table(doc, ts), [fig], cfg.wandb
    )
    return doc


def run_pde_id(raw: DictConfig) -> dict[str, Any]:
    """PDE identification by each mixed run's encoder (one export of each run in ``ckpt``), beside a random-init
    control and trivial features, on stored and amplitude-normalised inputs."""
    from ssl_pde.eval.pde_id import evaluate_pde_id, load_mixed_run, pde_id_table

    t0 = time.perf_counter()
    cfg = to_eval_config(raw)
    plain = cfg.corrupt.is_clean and cfg.transfer.is_plain and list(cfg.eval_crops) == [1, 1]
    if not plain or cfg.param is not None or cfg.eval_window is not None:
        raise UserError(
            "task=pde_id reads each PDE's stored splits with its export's own evaluation input: corrupt, transfer, "
            "eval_crops, param and eval_window stay at their defaults"
        )
    if not cfg.pde_id.normalise:
        raise UserError("pde_id.normalise is empty: give [false], [true] or [false, true]")
    out = _out(cfg)
    device = resolve_device(cfg.device)
    runs, encoders, seeds = [], [], []
    for c in cfg.ckpts:
        members, enc, fresh, seed = load_mixed_run(Path(c), Path(cfg.data.dir), device)
        pdes = [m.pde for m in members]
        if runs and pdes != [m.pde for m in runs[0]]:
            raise UserError(f"{c}: its run mixed {pdes}, {cfg.ckpts[0]}'s {[m.pde for m in runs[0]]}")
        runs.append(members)
        encoders.append(enc)
        seeds.append(len(seeds) if seed is None else seed)
    result = evaluate_pde_id(runs, encoders, fresh, cfg.pde_id, device, seeds)
    doc = {
        "task": cfg.task,
        "pdes": result["pdes"],
        "ckpts": list(cfg.ckpts),
        "pretrain_seeds": seeds,
        "result": result,
        "config": OmegaConf.to_container(raw, resolve=True),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    fig = report.pde_id_plot(out / "pde_id.png", result)
    title = f"PDE identification: {', '.join(result['pdes'])}"
    report.write_results(out, doc, title, pde_id_table(result), [fig], cfg.wandb)
    return doc


def _messy(cfg: EvalConfig) -> str:
    """The corruption settings in words, e.g. ``corrupt noise=0.05 drop_x=0.3 seed=0``."""
    c = cfg.corrupt
    levels = [f"{k}={getattr(c, k):g}" for k in ("noise", "drop_x", "drop_t") if getattr(c, k) > 0]
    return f"corrupt {' '.join(levels)} seed={c.seed}"


def _moved(inp: EvalInputs) -> list[str]:
    """The transfer in words, e.g. ``['extrapolation: test nu > 0.318 (train 0.7-quantile), labels and valid at
    or below', 'test grid ×2: 64 → 128 points']``; empty without one."""
    rec = inp.transfer or {}
    out = []
    if (ext := rec.get("extrapolate")) is not None:
        out.append(
            f"extrapolation: test {ext['param']} > {ext['threshold']:.4g} (train {ext['q']:g}-quantile), labels and "
            "valid at or below"
        )
    if (res := rec.get("resolution")) is not None:
        out.append(f"test grid ×{res['factor']:g}: {res['nx']['stored']} → {res['nx']['test']} points")
    return out


def _out(cfg: EvalConfig) -> Path:
    """The output directory (default: ``eval_<task>`` beside the first encoder), checked before any work."""
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.ckpts[0]).parent / f"eval_{cfg.task}"
    check_output_dir(out, "out_dir")
    return out


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Dispatch on ``cfg.task``."""
    tasks = {"regression": run_regression, "timestep": run_timestep, "pde_id": run_pde_id}
    if cfg.task not in tasks:
        raise UserError(f"unknown task {cfg.task!r} (available: {', '.join(tasks)})")
    return tasks[cfg.task](cfg)


main = hydra_entry("eval", run_task)

if __name__ == "__main__":
    main()
