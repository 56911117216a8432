"""Reports of an evaluation: markdown tables, figures, ``results.json`` / ``results.md`` and a W&B run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_pde.eval.protocol import LABELS, METHODS, SHORT

METRIC_NAMES = {
    "nmse": "NMSE",
    "rel_l1": "rel. L1",
    "mse": "MSE",
    "r2": "R²",
    "log_mse": "log-MSE",
    "rollout_nmse": "rollout NMSE",
    "one_step_nmse": "one-step NMSE",
    "rollout_mse": "rollout MSE",
    "rollout_nmse_sum": "rollout NMSE (sum)",
    "one_step_mse": "one-step MSE",
}


def pm(v: list[float]) -> str:
    """``mean ± std`` with 4 significant digits for the mean."""
    return f"{v[0]:.4g} ± {v[1]:.2g}"


def comparison_rows(comparisons: dict[str, Any], names: dict[str, str]) -> list[str]:
    """Markdown rows: comparison, ratio, 95 % interval, what it is over, verdict."""
    rows = []
    for key, c in comparisons.items():
        base, meth = key.split("/")
        rows.append(
            f"| {names.get(base, base)} / {names.get(meth, meth)} | {c['ratio']:.2f} | "
            f"[{c['low']:.2f}, {c['high']:.2f}] | {c['interval_over']} | **{c['verdict']}** |"
        )
    return rows


def regression_table(doc: dict[str, Any]) -> str:
    """The regression report: methods x metrics, the paired comparisons, and the searches' budgets."""
    r = doc["result"]
    metrics, sel = r["metrics"], r["select_metric"]
    p, d = r["n_pretrain_seeds"], len(r["label_draws"])
    lines = [
        f"Regression of `{doc['param']}`{' (fitted in log space)' if doc['log_target'] else ''} on {doc['pde']}: "
        f"{doc['n_labels']} labelled trajectories per draw; valid {doc['n_valid']}, test {doc['n_test']} "
        f"trajectories; {p} pretraining seed{'s' * (p > 1)} × {d} label draws (mean ± std over the {p * d} cells, "
        f"ddof=1). Every choice on valid ({sel}); the test split read once.",
        "",
        "| method | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    best = {m: min(r["summary"], key=lambda k, m=m: r["summary"][k][m][0] * (1 if m != "r2" else -1)) for m in metrics}
    for meth in METHODS:
        if meth in r["summary"]:
            cells = [pm(r["summary"][meth][m]) for m in metrics]
            cells = [f"**{c}**" if best[m] == meth else c for c, m in zip(cells, metrics, strict=True)]
            lines.append(f"| {LABELS[meth]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired {METRIC_NAMES[sel]} ratios (above 1: the second method is better), 95 % two-level bootstrap "
        "interval on the log-ratio; a win is claimed only when the interval excludes 1.",
        "",
        "| comparison | ratio | 95 % interval | interval over | verdict |",
        "|---|---|---|---|---|",
        *comparison_rows(r["comparisons"], SHORT),
        "",
        "| method | candidates per cell | chosen per cell (valid score) | optimiser steps (all cells) | seconds |",
        "|---|---|---|---|---|",
    ]
    for meth, b in r["budget"].items():
        chosen = "; ".join(_chosen(c["choices"][meth]) for c in r["cells"])
        lines.append(f"| {meth} | {b['candidates'] or '-'} | {chosen} | {b['steps'] or '-'} | {b['seconds']} |")
    edges = [
        f"{meth} chose a learning rate at the edge of its grid in {b['lr_at_edge']} of {b['cells']} cells and was "
        f"still improving at the end of its budget in {b['still_improving']}"
        for meth, b in r["budget"].items()
        if b.get("cells") and (b["lr_at_edge"] or b["still_improving"])
    ]
    if edges:
        lines += [
            "",
            "Searches at their bounds: " + "; ".join(edges) + ". A bound that binds one side more than the other "
            "can move a ratio; widen the grid or the budget (chosen on valid) before reading it as final.",
        ]
    reused = sum("reused" in c["choices"].get("supervised", {}) for c in r["cells"])
    if reused:
        lines += [
            "",
            f"The supervised network of {reused} of {len(r['cells'])} cells was restored from "
            "`regression.baseline_cache`: trained by an earlier evaluation of the same cells (same data, labels, "
            "seed, settings and code); its steps and seconds are that training's.",
        ]
    return "\n".join(lines)


def _chosen(choice: dict[str, Any]) -> str:
    if "chosen" in choice:
        c = choice["chosen"]
        views = {"crops": "", "lie": ", lie views", "eval": ", eval inputs"}.get(c["views"], f", {c['views']}")
        return f"lr {c['lr']:g}{views} @ {c['best_step']} ({choice['valid']:.3g})"
    return f"λ {choice['lambda']:g} ({choice['valid']:.3g})"


def regression_plots(
    out: Path, test_y: torch.Tensor, figures: dict[str, Any], param: str, log_axes: bool
) -> list[Path]:
    """Predicted vs true parameter (first cell) for the SSL and supervised methods; a 2D PCA of the first
    encoder's test representations coloured by the parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = test_y.numpy()
    shown = [m for m in ("ssl_linear", "ssl_finetune", "supervised") if m in figures["preds"]]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.4 * len(shown), 4.2), constrained_layout=True, squeeze=False)
    for ax, m in zip(axes[0], shown, strict=True):
        ax.scatter(y, figures["preds"][m].numpy(), s=6, alpha=0.6)
        lo, hi = float(y.min()), float(y.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set(xlabel=f"true {param}", ylabel=f"predicted {param}", title=LABELS[m])
        if log_axes:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_minor_formatter(NullFormatter())  # minor labels of a one-decade axis overlap
    paths = [out / "pred_vs_true.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    f = figures.get("features")
    if f is not None:
        f = f.double()
        f = (f - f.mean(0)) / f.std(0).clamp_min(1e-8)
        _, _, v = torch.pca_lowrank(f, q=2, center=True)
        xy = (f @ v).numpy()
        fig, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.log10(y) if log_axes else y, s=6, cmap="viridis")
        fig.colorbar(sc, label=f"log10 {param}" if log_axes else param)
        ax.set_title("test representations, first two principal components")
        paths.append(out / "representations_pca.png")
        fig.savefig(paths[1], dpi=110)
        plt.close(fig)
    return paths


def comparison_plot(path: Path, result: dict[str, Any]) -> Path:
    """Left: each method's test score of the selection metric per cell (dots) and mean (bar), the floor dashed.
    Right: each paired ratio supervised / method with its 95 % interval; right of 1 the method is better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = result["select_metric"]
    methods = [m for m in METHODS if m in result["summary"] and m != "floor"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.55 * len(methods) + 1.8), constrained_layout=True)
    for i, m in enumerate(methods):
        vals = [c["test"][m][sel] for c in result["cells"]]
        a.barh(i, float(np.mean(vals)), color="C0" if m.startswith("ssl") else "C7", alpha=0.5)
        a.plot(vals, [i] * len(vals), "k.", ms=5)
    a.axvline(result["summary"]["floor"][sel][0], color="C3", ls="--", label="best constant (floor)")
    a.set(yticks=range(len(methods)), yticklabels=[SHORT[m] for m in methods], xlabel=f"test {METRIC_NAMES[sel]}")
    a.invert_yaxis()
    a.legend(fontsize=8)
    comps = list(result["comparisons"].items())
    for i, (_, c) in enumerate(comps):
        color = "C2" if c["low"] > 1 else "C3" if c["high"] < 1 else "C7"
        b.errorbar(
            c["ratio"], i, xerr=[[c["ratio"] - c["low"]], [c["high"] - c["ratio"]]], fmt="o", color=color, capsize=4
        )
    b.axvline(1, color="k", lw=1)
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    b.set_xscale("log")
    lo = min([c["low"] for _, c in comps] + [1.0]) / 1.2
    hi = max([c["high"] for _, c in comps] + [1.0]) * 1.2
    b.set_xlim(lo, hi)
    b.xaxis.set_major_locator(FixedLocator([t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if lo <= t <= hi]))
    b.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    b.xaxis.set_minor_formatter(NullFormatter())
    b.set(
        yticks=range(len(comps)),
        xlabel=f"supervised / method ({METRIC_NAMES[sel]}), 95 % interval",
        yticklabels=[f"supervised / {SHORT[k.split('/')[1]]}" for k, _ in comps],
    )
    b.invert_yaxis()
    b.set_title(comps[0][1]["interval_over"] if comps else "", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pde_id_plot(path: Path, result: dict[str, Any]) -> Path:
    """Left: test accuracy of each feature set on each kind of input (per pretraining seed: dots; mean: bar), the
    majority-class floor dashed. Right: the SSL representation's confusion matrix (first seed) on the last kind of
    input (amplitude-normalised when measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(result["rows"].items())
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.5 * len(rows) + 2.2), constrained_layout=True)
    for i, (_, r) in enumerate(rows):
        accs = [c["accuracy"] for c in r["seeds"]]
        color = {"ssl": "C0", "random_init": "C7", "trivial": "C1"}[r["features"]]
        a.barh(i, float(np.mean(accs)), color=color, alpha=0.5 if r["inputs"] == "stored" else 0.85)
        a.plot(accs, [i] * len(accs), "k.", ms=5)
    a.axvline(result["floor"], color="C3", ls="--", label="majority class (floor)")
    names = {"ssl": "SSL", "random_init": "random init", "trivial": "trivial features"}
    a.set(
        yticks=range(len(rows)),
        yticklabels=[f"{names[r['features']]}, {r['inputs']}" for _, r in rows],
        xlabel="test accuracy",
        xlim=(0, 1.02),
    )
    a.invert_yaxis()
    a.legend(fontsize=8, loc="lower right")
    last = [r for _, r in rows if r["features"] == "ssl"][-1]
    conf = np.array(last["seeds"][0]["confusion"], dtype=float)
    frac = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    b.imshow(frac, vmin=0, vmax=1, cmap="Blues")
    for (i, j), v in np.ndenumerate(conf):
        b.text(j, i, f"{int(v)}", ha="center", va="center", color="white" if frac[i, j] > 0.5 else "black")
    k = len(result["pdes"])
    b.set(xticks=range(k), yticks=range(k), xticklabels=result["pdes"], yticklabels=result["pdes"])
    b.set(xlabel="predicted", ylabel="true", title=f"SSL, {last['inputs']} inputs (first seed)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(out: Path, doc: dict[str, Any], title: str, table: str, figures: list[Path], wandb_cfg: Any) -> None:
    """results.json, results.md, the table and paths on stdout, and (when enabled) a W&B run."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    (out / "results.md").write_text(f"# {title}\n\n{table}\n")
    print(table)
    print(f"\nresults: {out / 'results.json'}, {out / 'results.md'}; figures: {', '.join(map(str, figures))}")
    if wandb_cfg is not None and wandb_cfg.enabled and wandb_cfg.mode != "disabled":
        run_dir = log_wandb(out, doc, table, figures, wandb_cfg)
        hint = f"  (upload later: wandb sync {run_dir})" if wandb_cfg.mode == "offline" else ""
        print(f"W&B run ({wandb_cfg.mode}): {run_dir}{hint}")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested numbers as ``a/b/c`` keys; ``[mean, std]`` pairs as ``.../mean`` and ``.../std``."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = float(v)
        elif isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v):
            out[key + "/mean"], out[key + "/std"] = v
    return out


def log_wandb(out: Path, doc: dict[str, Any], table: str, figures: list[Path], wcfg: Any) -> str:
    """One W&B run per evaluation (offline by default, under ``out/wandb``): the config, per-cell test scores,
    the summary and comparisons, the markdown table and the figures; linked to the pretraining run through its
    id when the first encoder's run directory has one (``wandb_run_id.txt``)."""
    import wandb

    id_file = Path(doc["ckpts"][0]).parent / "wandb_run_id.txt"
    config = {**doc["config"], "pretrain_wandb_id": id_file.read_text().strip() if id_file.is_file() else None}
    run = wandb.init(
        project=wcfg.project,
        dir=str(out),
        mode=wcfg.mode,
        job_type=f"eval_{doc['task']}",
        name=f"{doc['pde']}_{doc['task']}",
        reinit="create_new",
        config=config,
    )
    try:
        r = doc["result"]
        for i, c in enumerate(r["cells"]):
            run.log({"cell": i, **flatten(c["test"], "test/")})
        run.summary.update(flatten(r["summary"], "summary/"))
        run.summary.update(
            flatten(
                {k: {"ratio": v["ratio"], "low": v["low"], "high": v["high"]} for k, v in r["comparisons"].items()},
                "comparisons/",
            )
        )
        run.log({f"figures/{p.stem}": wandb.Image(str(p)) for p in figures})
        run.log({"results_md": wandb.Html(f"<pre>{table}</pre>")})
        return run.dir.rsplit("/files", 1)[0]
    finally:
        run.finish()


def timestep_table(doc: dict[str, Any], ts: Any) -> str:
    """The time-stepping report: variants x metrics with the persistence floor, and the paired comparisons."""
    r = doc["result"]
    p, s = r["n_pretrain_seeds"], len({c["seed"] for c in r["cells"]})
    conds = ", ".join(r["param_conditions"]) or "none vary"
    lines = [
        f"Time-stepping ({doc['pde']}): {doc['n_train']} training trajectories, valid {doc['n_valid']}, test "
        f"{doc['n_test']}; rollout of {r['frames']} frames from frame {r['rollout_start']} ({ts.history} in, "
        f"{ts.future} out per call); stepper {ts.arch} (width {ts.width}), learning rate and stopping step chosen "
        f"on the valid rollout NMSE; {p} pretraining seed{'s' * (p > 1)} × {s} stepper seeds (mean ± std, ddof=1). "
        f"True-parameter condition: {conds}; SSL condition: "
        f"{'all dimensions' if ts.ssl_dims is None else f'{ts.ssl_dims} principal components'}.",
        "",
        "| conditioning | " + " | ".join(METRIC_NAMES[k] for k in r["summary"]["persistence"]) + " |",
        "|---|" + "---|" * len(r["summary"]["persistence"]),
    ]
    names = {"persistence": "persistence (floor: last input frame)", "none": "none", "param": "true parameters",
             "ssl": "frozen SSL representation"}  # fmt: skip
    for v in ("persistence", "none", "param", "ssl"):
        if v in r["summary"]:
            lines.append(f"| {names[v]} | " + " | ".join(pm(x) for x in r["summary"][v].values()) + " |")
    lines += [
        "",
        "Paired rollout-NMSE ratios (above 1: the second conditioning is better), 95 % two-level bootstrap interval.",
        "",
        "| comparison | ratio | 95 % interval | interval over | verdict |",
        "|---|---|---|---|---|",
        *comparison_rows(r["comparisons"], {"none": "none", "param": "true parameters", "ssl": "SSL"}),
    ]
    return "\n".join(lines)


def plot_rollouts(path: Path, rollouts: dict[str, torch.Tensor]) -> Path:
    """1D: space-time images of the first test rollout per variant. 2D: the first field of the first test
    trajectory at the first and last predicted frames, per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["truth", *[k for k in ("none", "param", "ssl") if k in rollouts]]
    if rollouts["truth"].dim() == 3:  # (n, K, X)
        fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3.2), constrained_layout=True)
        vmax = float(rollouts["truth"][0].abs().max())
        for ax, k in zip(axes, keys, strict=True):
            ax.imshow(rollouts[k][0].numpy(), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set(title=k if k != "truth" else "truth (test trajectory)", xlabel="x index", ylabel="predicted frame")
    else:  # (n, K, C, X, Y)
        kk = rollouts["truth"].shape[1]
        fig, axes = plt.subplots(2, len(keys), figsize=(3.3 * len(keys), 6.4), constrained_layout=True)
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
