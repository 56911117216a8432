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
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext, redirect_stdout
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf
from rich.progress import Progress, TaskID

from ssl_pde.core.cli import hydra_entry
from ssl_pde.core.console import ProgressEvents, quiet_console, stage_progress
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


def _command(module: str, args: list[str], log_file: Path, poll: Callable[[], None] = lambda: None) -> None:
    """Run a project command line (``python -m module args``) with its output appended to ``log_file``; ``poll``
    is called about three times a second while it runs. Its one-line error (exit status 2) becomes this
    command's; any other failure shows its last output lines."""
    with log_file.open("a") as log_out:
        log_out.write(f"\n$ {module} {' '.join(args)}\n")
        log_out.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=log_out, stderr=subprocess.PIPE, text=True
        )
        while proc.poll() is None:
            poll()
            time.sleep(0.3)
        err = proc.stderr.read() if proc.stderr else ""
        log_out.write(err)
    poll()
    if proc.returncode == 2:
        raise UserError(err.strip().splitlines()[-1].removeprefix("error: "))
    if proc.returncode != 0:
        sys.stderr.write(err[-3000:])
        raise RuntimeError(f"{module} failed with exit status {proc.returncode} (output in {log_file})")


def _done(split_dir: Path, shard_size: int, n: int) -> int:
    """Trajectories in the finished shards of a split being generated (for the progress bar)."""
    return min(n, shard_size * len(list(split_dir.glob("shard-*.h5"))))


class EpochProgress(L.Callback):
    """Advances a stage progress bar by one per training epoch, showing the VICReg loss."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self.bar, self.task = bar, task

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        self.bar.update(self.task, advance=1, status="" if loss is None else f"VICReg loss {float(loss):.3g}")


def _blocks(table: str, starts: tuple[str, ...]) -> list[str]:
    """The paragraphs of a markdown report that start with one of ``starts`` (the demo's short summary)."""
    return [b for b in table.split("\n\n") if b.startswith(starts)]


def run_demo(cfg: DictConfig) -> dict:
    """Run every stage; return a summary dict (also printed).

    Generation and the solver check run as the ``ssl-pde-generate`` and ``ssl-pde-verify`` command lines (the
    demo is a pipeline of the commands and imports no solver code); pretraining and evaluation run in-process.
    The console shows one progress bar per stage and the results; everything else (each command's output,
    Lightning's and W&B's messages, warnings) goes to ``<out_dir>/demo.log`` (to the console with
    ``verbose=true``).
    """
    t0 = time.perf_counter()
    out_dir = Path(cfg.out_dir)
    check_output_dir(out_dir, "out_dir")
    log_file = out_dir / "demo.log"
    fresh = not out_dir.exists()
    try:
        return _run_stages(cfg, out_dir, log_file, t0)
    except UserError:
        if fresh and not any(out_dir.rglob("shard-*.h5")):  # refused before any data: leave nothing behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _run_stages(cfg: DictConfig, out_dir: Path, log_file: Path, t0: float) -> dict:
    """:func:`run_demo`'s stages (see there)."""
    quiet = nullcontext() if cfg.verbose else quiet_console(log_file)
    solver = _overrides(cfg.solver, "solver.")
    common = [f"pde={cfg.pde.name}", f"device={cfg.device}", f"seed={cfg.seed}", *solver]
    gen_keys = ("shard_size", "batch_size", "max_time_error", "max_reject_fraction", "overwrite")
    print(f"ssl-pde-demo: {cfg.pde.name} viscosity from few labels; everything under {out_dir}/ (log: {log_file})")
    with quiet, stage_progress() as bar:
        data = bar.add_task("data", total=sum(cfg.splits.values()), status="generating")
        counts, base = {}, 0
        for split, n in cfg.splits.items():
            keys = [f"{k}={_value(cfg[k])}" for k in gen_keys]
            args = [*common, *keys, "progress=false", f"split={split}", f"num_samples={n}", f"out_dir={out_dir}"]
            split_dir = out_dir / cfg.pde.name / split

            def poll(split_dir: Path = split_dir, n: int = n, base: int = base, split: str = split) -> None:
                bar.update(data, completed=base + _done(split_dir, cfg.shard_size, n), status=f"generating {split}")

            _command(GENERATE, args, log_file, poll)
            counts[split] = sum(validate_shard(p).n for p in list_shards(split_dir))
            base += n
        bar.update(data, status="solver vs scipy Radau")
        check = out_dir / "verify_reference.json"
        verify = [*common, "tables=[reference]", f"n_trajectories={cfg.n_reference}", f"json_out={check}"]
        _command(VERIFY, verify, log_file)
        agree = json.loads(check.read_text())
        bar.update(data, status="done")
        fig = plot_trajectories(out_dir / cfg.pde.name / "train", out_dir / "figures" / "trajectories.png")
        train_shards = list_shards(out_dir / cfg.pde.name / "train")
        nus = np.concatenate([validate_shard(p).params["nu"] for p in train_shards])

        from hydra import compose

        from ssl_pde.cli.eval import run_regression
        from ssl_pde.cli.pretrain import pretrain

        run_dir = out_dir / "pretrain"
        console = ["callbacks.progress=null", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
        console = [] if cfg.verbose else console
        pcfg = compose(
            "pretrain",
            overrides=[*cfg.pretrain, *console, f"data.dir={out_dir}", f"run_dir={run_dir}", f"seed={cfg.seed}"],
        )
        pre = bar.add_task("pretrain", total=pcfg.trainer.max_epochs, status="")
        t1 = time.perf_counter()
        metrics = pretrain(pcfg, extra_callbacks=[EpochProgress(bar, pre)])
        pretrain_seconds = round(time.perf_counter() - t1, 1)
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
        reg = ecfg.regression
        ev = bar.add_task("evaluate", total=len(reg.label_draws) * len(reg.methods), status="fits, choices on valid")
        events = ProgressEvents(bar, ev, "fit")
        logging.getLogger("ssl_pde.eval").addHandler(events)
        try:
            with log_file.open("a") as log_out, redirect_stdout(log_out if not cfg.verbose else sys.stdout):
                doc = run_regression(ecfg)
        finally:
            logging.getLogger("ssl_pde.eval").removeHandler(events)
        bar.update(ev, status="done")
        bar.update(pre, completed=pcfg.trainer.max_epochs)
    summary: dict = {
        "data": {k: int(v) for k, v in counts.items()},
        "nu_range": [float(nus.min()), float(nus.max())],
        "radau_max_rel_l2": agree["reference"]["max_rel_l2"],
        "figure": str(fig),
        "pretrain_seconds": pretrain_seconds,
        "pretrain_precision": str(pcfg.trainer.precision),  # float32 unless trainer.precision was given
        "pretrain_probe_nmse": metrics.get("val/probe_nmse"),
        "eval": {k: doc["result"][k] for k in ("summary", "comparisons", "budget")},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    _print_summary(cfg, doc, summary, out_dir)
    return summary


def _print_summary(cfg: DictConfig, doc: dict, summary: dict, out_dir: Path) -> None:
    """The demo's short report: data and solver check, one table (each method's test error and its paired ratio
    against the supervised network), where the searches hit a bound, and where everything is."""
    from ssl_pde.eval.protocol import LABELS
    from ssl_pde.eval.report import METRIC_NAMES, regression_table

    counts, nus = summary["data"], summary["nu_range"]
    print(
        f"\nData: {', '.join(f'{k} {v}' for k, v in counts.items())} trajectories, nu in [{nus[0]:.3g}, {nus[1]:.3g}]; "
        f"solver vs independent scipy Radau on {cfg.n_reference} trajectories: max relative L2 difference "
        f"{summary['radau_max_rel_l2']:.2e}"
    )
    r = doc["result"]
    m = r["select_metric"]
    over = next(iter(r["comparisons"].values()), {}).get("interval_over", "")
    print(
        f"Regression of {doc['param']} from {doc['n_labels']} labels ({len(r['cells'])} cells; choices on valid, test "
        f"read once). Ratio: supervised / method, 95 % interval over {over}; above 1 the method beats supervised.\n"
    )
    print(f"| method | test {METRIC_NAMES[m]} | ratio [95 % interval] | verdict |\n|---|---|---|---|")
    for meth, scores in r["summary"].items():
        c = r["comparisons"].get(f"supervised/{meth}")
        cmp = f"{c['ratio']:.2f} [{c['low']:.2f}, {c['high']:.2f}] | {c['verdict']}" if c else "- | -"
        print(f"| {LABELS[meth]} | {scores[m][0]:.3g} ± {scores[m][1]:.2g} | {cmp} |")
    bounds = _blocks(regression_table(doc), ("Searches at their bounds",))
    if bounds:
        print("\n" + bounds[0].split(". A bound")[0] + ".")
    print(
        "These numbers hold at the demo's budget (minutes on a CPU); what longer pretraining and training change "
        "is measured in docs/burgers-study.md."
    )
    print(
        f"\nFigures: {summary['figure']}, {out_dir / 'eval'}/*.png; every number: {out_dir / 'eval' / 'results.md'}\n"
        f"Runs: {out_dir / 'pretrain'} (W&B offline: wandb sync {out_dir}/*/wandb/offline-run-*); "
        f"full log: {out_dir / 'demo.log'}\nDone in {summary['seconds']} s (pretraining precision "
        f"{summary['pretrain_precision']})."
    )


main = hydra_entry("demo", run_demo, "interrupted: rerun ssl-pde-demo to resume")

if __name__ == "__main__":
    main()
