"""The reproduction: per PDE, generate data, pretrain VICReg, evaluate the frozen encoder downstream.

    python scripts/reproduce.py --scale cpu                          # Burgers, KdV, KS at laptop scale (~2 h, 2 cores)
    python scripts/reproduce.py --scale cpu --pdes ns2d              # NS buoyancy on a 32 x 32 grid (laptop scale)
    python scripts/reproduce.py --scale paper --device cuda          # 10,000 unlabelled trajectories per 1D PDE
    python scripts/reproduce.py --scale paper --pdes ns2d --device cuda   # PDEArena's NS split sizes

Every step is one of the project's command lines (``ssl-pde-generate``, ``ssl-pde-pretrain``,
``ssl-pde-eval``) run as a subprocess, and every command is appended to ``<out>/commands.sh`` so that any
number in the summary can be reproduced alone. Steps whose outputs exist are skipped (generation resumes
shard by shard; pretraining resumes from its last checkpoint), so an interrupted run continues where it
stopped. Per PDE:

1. data: ``train`` (unlabelled for pretraining; the labelled subsets are drawn from it), ``valid``, ``test``;
2. pretraining with ``experiment=<pde>_vicreg`` (``burgers_demo`` at CPU scale) plus the scale's overrides,
   once per pretraining seed (``--pretrain-seeds``; ``<pde>/pretrain_s<seed>``);
3. regression of the PDE's probe parameter (``configs/pde/<pde>.yaml``) for each labelled-set size under the
   evaluation protocol (every method, choices on valid, pretraining seeds x 3 label draws, paired intervals);
4. conditioned time-stepping (none / true parameters / SSL representation) for each stepper architecture.

A study runs variants beside the scale's own runs, on the same data: ``--variant noboost --pretrain-args
augment.strengths.galilean_boost=0`` pretrains and evaluates under ``<out>/<pde>/noboost/``;
``scripts/study_table.py`` compares every variant's valid and test scores. A downstream ablation evaluates fixed
encoders: ``--variant long --encoders-of "" --eval-args regression.finetune.max_steps=1000 ...`` evaluates the
scale's own encoders (``--encoders-of NAME``: a variant's) and pretrains nothing; ``--labels 64`` restricts the
labelled-set sizes of a screening run. Every regression of one PDE keeps its supervised networks in
``<out>/<pde>/baseline_cache`` (``regression.baseline_cache``): a variant evaluated with the same data, labels,
seeds and supervised settings as an earlier one restores them instead of training them again
(``ssl_pde/eval/baseline_cache.py``), which saves most of an evaluation's time in an encoder ablation.

Long runs go in chunks: ``--pdes burgers --pretrain-seeds 0`` pretrains and evaluates one seed; the call
with ``--pretrain-seeds 0 1 2`` then reuses the finished encoders and evaluates the three together.

The summary (``<out>/summary.md`` and ``.json``) collects every results.json with the wall time of each
step and the machine. A scale is a config, ``configs/reproduce/<scale>.yaml``: split sizes, seeds, label
counts, steppers, and the config choices each command gets (``solver=...`` for generation, ``experiment=...``
and ``scale=...`` for pretraining, ``eval_scale=...`` for evaluation); its settings are shared by the PDEs
unless a PDE's entry under ``pdes`` replaces one (ns2d has its own splits, solver, experiment and stepper).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

SCALE_DIR = Path(__file__).resolve().parents[1] / "configs" / "reproduce"


@dataclass
class Scale:
    """A reproduction scale (``configs/reproduce/<scale>.yaml``); a PDE's entry in ``pdes`` replaces a key."""

    splits: dict[str, int]
    pretrain_seeds: list[int]
    labels: list[int]
    archs: list[str]
    generate: list[str]
    experiment: str | None
    pretrain: list[str]
    eval: list[str]
    pdes: dict[str, dict[str, Any]] = field(default_factory=dict)


def scale_names() -> list[str]:
    return sorted(p.stem for p in SCALE_DIR.glob("*.yaml"))


def load_scale(name: str) -> DictConfig:
    """``configs/reproduce/<name>.yaml``, checked against :class:`Scale` (an unknown key is refused)."""
    cfg = OmegaConf.merge(OmegaConf.structured(Scale), OmegaConf.load(SCALE_DIR / f"{name}.yaml"))
    known = set(Scale.__dataclass_fields__) - {"pdes"}
    for pde, over in cfg.pdes.items():
        if pde not in PDE_NAMES or not set(over) <= known:
            sys.exit(f"error: {SCALE_DIR / name}.yaml: bad entry pdes.{pde} ({sorted(set(over) - known)})")
    return cfg


PDE_NAMES = ("burgers", "kdv", "ks", "ns2d")


def setting(scale: DictConfig, key: str, pde: str):
    """A scale's value for ``key``, or the PDE's own (``pdes.<pde>.<key>``), as plain Python."""
    own = scale.pdes.get(pde) or {}
    value = own[key] if key in own else scale[key]
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


MODULES = {"generate": "data_gen.cli.generate", "pretrain": "ssl_pde.cli.pretrain", "eval": "ssl_pde.cli.eval"}


class Runner:
    """Runs the project's command lines, records them, and times them."""

    def __init__(self, out: Path, dry_run: bool, record: bool = True) -> None:
        self.out, self.dry_run, self.record = out, dry_run, record
        self.times: dict[str, float] = {}
        out.mkdir(parents=True, exist_ok=True)
        self.script = out / "commands.sh"
        self.jobs = 1
        self._queue: list[tuple[str, list[str], str]] | None = None

    @contextmanager
    def side_by_side(self) -> Iterator[None]:
        """Steps submitted in the block are independent: after it they run up to ``jobs`` at a time, each with
        ``cores // jobs`` threads and its output in ``<out>/logs/<step>.log`` (with ``jobs`` 1: one after the
        other, output on the console). On 2 cores, two one-thread pretraining runs did about 1.5x the steps of
        one two-thread run (small convolutions use threads poorly)."""
        self._queue = []
        try:
            yield
            queue = self._queue
        finally:
            self._queue = None
        if self.jobs == 1 or len(queue) < 2:
            for key, cmd, shown in queue:
                self._run(key, cmd, shown)
        else:
            self._run_parallel(queue)

    def __call__(self, key: str, tool: str, args: list[str]) -> None:
        cmd = [sys.executable, "-m", MODULES[tool], *args]
        shown = f"ssl-pde-{tool} " + " ".join(shlex.quote(a) for a in args)
        if not self.record:
            return
        print(f"\n[{time.strftime('%H:%M:%S')}] {key}: {shown}", flush=True)
        with self.script.open("a") as f:
            f.write(shown + "\n")
        if self.dry_run:
            return
        if self._queue is not None:
            self._queue.append((key, cmd, shown))
            return
        self._run(key, cmd, shown)

    def _run(self, key: str, cmd: list[str], shown: str) -> None:
        t0 = time.perf_counter()
        res = subprocess.run(cmd)
        self.times[key] = time.perf_counter() - t0
        if res.returncode != 0:
            sys.exit(f"error: step {key} failed with exit status {res.returncode}: {shown}")

    def _run_parallel(self, queue: list[tuple[str, list[str], str]]) -> None:
        threads = max(1, len(os.sched_getaffinity(0)) // self.jobs)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        (self.out / "logs").mkdir(exist_ok=True)
        waiting, running, failed = list(queue), {}, []
        while waiting or running:
            while waiting and len(running) < self.jobs:
                key, cmd, shown = waiting.pop(0)
                log = self.out / "logs" / (key.replace("/", "_") + ".log")
                with log.open("w") as f:
                    proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
                running[key] = (proc, time.perf_counter(), shown, log)
                print(f"[{time.strftime('%H:%M:%S')}] {key}: started ({threads} threads), output in {log}", flush=True)
            time.sleep(1.0)
            for key, (proc, t0, shown, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[key]
                self.times[key] = time.perf_counter() - t0
                print(f"[{time.strftime('%H:%M:%S')}] {key}: exit {proc.returncode}", flush=True)
                if proc.returncode != 0:
                    failed.append(f"{key} (exit {proc.returncode}, see {log}): {shown}")
        if failed:
            sys.exit("error: steps failed: " + "; ".join(failed))


@dataclass
class Variant:
    """A variant of a scale's runs (an ablation of a study): its own pretraining and evaluation directories under
    ``<out>/<pde>/<name>/``, its overrides appended to the scale's; the data are shared. ``name`` "" is the scale's
    own runs."""

    name: str = ""
    pretrain: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    tasks: tuple[str, ...] = ("regression", "timestep")
    labels: list[int] | None = None  # labelled-set sizes (None: the scale's)
    encoders_of: str | None = None  # evaluate another variant's encoders ("" the scale's own) instead of pretraining

    def root(self, out: Path, pde: str) -> Path:
        return out / pde / self.name if self.name else out / pde

    def encoder_root(self, out: Path, pde: str) -> Path:
        """Where the encoders evaluated by this variant live (its own directory unless ``encoders_of``)."""
        if self.encoders_of is None:
            return self.root(out, pde)
        return out / pde / self.encoders_of if self.encoders_of else out / pde

    def key(self, pde: str, step: str) -> str:
        return f"{pde}/{self.name}/{step}" if self.name else f"{pde}/{step}"


def run_pde(
    pde: str,
    scale: dict,
    out: Path,
    device: str,
    run: Runner,
    seeds: list[int],
    pretrain_only: bool = False,
    variant: Variant | None = None,
) -> dict:
    """All steps for one PDE with the encoders of pretraining ``seeds``; returns the paths of its results.

    ``pretrain_only`` stops after generation and pretraining (a chunk that leaves evaluation to a later call).
    """
    var = variant or Variant()
    root = var.root(out, pde)
    data = out / pde / "data"
    for split, n in setting(scale, "splits", pde).items():  # one after the other: they share the data directory
        run(
            f"{pde}/generate/{split}",
            "generate",
            [
                f"pde={pde}",
                f"split={split}",
                f"num_samples={n}",
                f"out_dir={data}",
                f"device={device}",
                *setting(scale, "generate", pde),
            ],
        )
    encs = []
    with run.side_by_side():  # the seeds' pretraining runs are independent
        for seed in seeds:
            pre = var.encoder_root(out, pde) / f"pretrain_s{seed}"
            enc = pre / "encoder.pt"
            encs.append(enc)
            if var.encoders_of is not None:
                if not enc.exists() and not run.dry_run:
                    sys.exit(f"error: --encoders-of {var.encoders_of or '(the scale)'}: no encoder {enc}")
                continue
            if not enc.exists():
                experiment = setting(scale, "experiment", pde) or f"{pde}_vicreg"
                resume = ["ckpt_path=last"] if (pre / "checkpoints" / "last.ckpt").exists() else []
                args = [f"experiment={experiment}", f"data.dir={data}", f"run_dir={pre}", f"seed={seed}"]
                args += [*setting(scale, "pretrain", pde), *var.pretrain, *resume]
                run(var.key(pde, f"pretrain_s{seed}"), "pretrain", args)
    results = {"regression": {}, "timestep": {}}
    if pretrain_only:
        return results
    tag = "s" + "".join(map(str, seeds))
    ckpt = f"ckpt=[{','.join(map(str, encs))}]"

    def evaluate(key: str, d: Path, args: list[str]) -> Path:
        if not (d / "results.json").exists():
            run(
                var.key(pde, key),
                "eval",
                [ckpt, f"data.dir={data}", f"out_dir={d}", f"device={device}", *args, *var.eval],
            )
        return d / "results.json"

    cache = out / pde / "baseline_cache"  # supervised networks shared by every variant's evaluations of these data
    with run.side_by_side():  # every evaluation reads the finished encoders only
        for n in var.labels or setting(scale, "labels", pde):
            d = root / f"eval_regression_n{n}_{tag}"
            args = [f"regression.n_labels={n}", f"regression.baseline_cache={cache}", *setting(scale, "eval", pde)]
            results["regression"][n] = evaluate(f"regression/n{n}_{tag}", d, args)
        n_train = setting(scale, "splits", pde)["train"]
        for arch in setting(scale, "archs", pde) if "timestep" in var.tasks else []:
            d = root / f"eval_timestep_{arch}_{tag}"
            args = ["task=timestep", f"timestep.n_train={n_train}", f"timestep.arch={arch}"]
            args += setting(scale, "eval", pde)
            results["timestep"][arch] = evaluate(f"timestep/{arch}_{tag}", d, args)
    return results


def _ms(v: list[float]) -> str:
    return f"{v[0]:.4g} ± {v[1]:.2g}"


def _cmp(c: dict | None) -> str:
    return "-" if c is None else f"{c['ratio']:.2f} [{c['low']:.2f}, {c['high']:.2f}] {c['verdict']}"


def summarise(paths: dict[str, dict], out: Path, args: argparse.Namespace, runner: Runner, wall: float) -> str:
    """Markdown tables over PDEs from the per-step results.json files; also writes summary.json."""
    reg_rows, ts_rows, doc = [], [], {"scale": args.scale, "machine": platform.platform(), "pdes": {}}
    for pde, res in paths.items():
        doc["pdes"][pde] = {"regression": {}, "timestep": {}}
        for n, p in res["regression"].items():
            if not p.exists():
                continue
            r = json.loads(p.read_text())["result"]
            doc["pdes"][pde]["regression"][n] = {k: r[k] for k in ("summary", "comparisons", "budget")}
            m, s = r["select_metric"], r["summary"]
            cells = " | ".join(
                _ms(s[k][m]) for k in ("floor", "ssl_linear", "ssl_finetune", "random_init", "supervised")
            )
            cmp = [_cmp(r["comparisons"].get(f"supervised/{k}")) for k in ("ssl_linear", "ssl_finetune")]
            head = f"| {pde} | {m} | {n} | {r['n_pretrain_seeds']} × {len(r['label_draws'])}"
            reg_rows.append(f"{head} | {cells} | {' | '.join(cmp)} |")
        for arch, p in res["timestep"].items():
            if not p.exists():
                continue
            full = json.loads(p.read_text())
            r = full["result"]
            doc["pdes"][pde]["timestep"][arch] = {k: r[k] for k in ("summary", "comparisons")}
            cells = [
                _ms(r["summary"][v]["rollout_nmse"]) if v in r["summary"] else "-"
                for v in ("persistence", "none", "param", "ssl")
            ]
            head = f"| {pde} | {arch} | {full['n_train']} | {r['frames']}"
            ts_rows.append(f"{head} | {' | '.join(cells)} | {_cmp(r['comparisons'].get('none/ssl'))} |")
    stem = f"summary_{args.variant}" if args.variant else "summary"
    old = out / f"{stem}.json"  # step times of earlier invocations (other PDEs, finished steps) are kept
    times = json.loads(old.read_text()).get("step_seconds", {}) if old.exists() else {}
    doc["step_seconds"] = {**times, **runner.times}
    doc["wall_seconds"] = wall
    minutes = {
        pde: {
            stage: sum(v for k, v in doc["step_seconds"].items() if k.startswith(f"{pde}/{stage}")) / 60
            for stage in ("generate", "pretrain", "regression", "timestep")
        }
        for pde in paths
    }
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=2, default=str))
    lines = [
        f"# Reproduction, scale `{args.scale}`",
        "",
        f"Command: `python scripts/reproduce.py --scale {args.scale} --pdes {' '.join(args.pdes)} "
        f"--device {args.device}`; every step is listed in `{out / 'commands.sh'}`. Machine: {platform.platform()}. "
        "Wall minutes per step (all invocations): "
        + "; ".join(f"{p}: " + ", ".join(f"{k} {v:.1f}" for k, v in m.items()) for p, m in minutes.items())
        + ".",
        "",
        "## Parameter regression (mean ± std over pretraining seeds × label draws, ddof=1)",
        "",
        "Ratios: supervised / SSL of the selection metric with the 95 % two-level bootstrap interval; a win only",
        "where the interval excludes 1.",
        "",
        "| PDE | metric | labels | seeds × draws | floor | SSL linear | SSL fine-tuned | random-init linear "
        "| supervised | sup. / SSL linear | sup. / SSL fine-tuned |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *reg_rows,
        "",
        "## Conditioned time-stepping (rollout NMSE, mean over frames; none / SSL above 1: SSL conditioning helps)",
        "",
        "| PDE | stepper | train traj. | frames | persistence | none | true parameters | SSL | none / SSL |",
        "|---|---|---|---|---|---|---|---|---|",
        *ts_rows,
    ]
    text = "\n".join(lines) + "\n"
    (out / f"{stem}.md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=scale_names(), default="cpu")
    ap.add_argument("--pdes", nargs="+", default=["burgers", "kdv", "ks"], choices=PDE_NAMES)
    ap.add_argument("--out", type=Path, default=None, help="default: runs/reproduce_<scale>")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (for generation and evaluation)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    ap.add_argument("--summary-only", action="store_true", help="only collect the results already in --out")
    ap.add_argument(
        "--pretrain-seeds",
        type=int,
        nargs="+",
        default=None,
        help="pretraining seeds whose encoders are evaluated together (default: the scale's); a chunk "
        "of one seed pretrains it and evaluates it alone, a later call with all seeds reuses them",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="independent steps (the seeds' pretraining runs, the evaluations) run this many at a time, the cores "
        "split between them; their output goes to <out>/logs/ (default 1: one after the other, on the console)",
    )
    ap.add_argument(
        "--variant",
        default="",
        help="a study's variant: its runs under <out>/<pde>/<variant>/ (the data shared), --pretrain-args and "
        "--eval-args appended to the scale's overrides, its summary in <out>/summary_<variant>.md",
    )
    ap.add_argument("--pretrain-args", nargs="*", default=[], help="overrides of the variant's pretraining")
    ap.add_argument("--eval-args", nargs="*", default=[], help="overrides of the variant's evaluations")
    ap.add_argument(
        "--tasks",
        nargs="+",
        default=["regression", "timestep"],
        choices=["regression", "timestep"],
        help="downstream tasks to run (default both; a regression study: --tasks regression)",
    )
    ap.add_argument(
        "--labels",
        type=int,
        nargs="+",
        default=None,
        help="labelled-set sizes of the regression (default: the scale's), e.g. --labels 64 for a screening study",
    )
    ap.add_argument(
        "--encoders-of",
        default=None,
        metavar="VARIANT",
        help="an evaluation-only variant: evaluate the encoders of VARIANT ('' for the scale's own) with this "
        "variant's --eval-args, pretraining nothing (a downstream ablation on fixed encoders)",
    )
    ap.add_argument(
        "--pretrain-only",
        action="store_true",
        help="generate and pretrain only (a chunk: several seeds' encoders, evaluated together later)",
    )
    args = ap.parse_args()
    out = args.out or Path("runs") / f"reproduce_{args.scale}"
    scale = load_scale(args.scale)
    if args.jobs < 1:
        sys.exit(f"error: --jobs must be a positive integer, got {args.jobs}")
    runner = Runner(out, args.dry_run or args.summary_only, record=not args.summary_only)
    runner.jobs = args.jobs
    t0 = time.perf_counter()
    seeds = args.pretrain_seeds or scale["pretrain_seeds"]
    if args.encoders_of is not None and (not args.variant or args.pretrain_args):
        sys.exit("error: --encoders-of needs --variant NAME and no --pretrain-args (it pretrains nothing)")
    if (args.pretrain_args or args.eval_args) and not args.variant:
        sys.exit("error: --pretrain-args and --eval-args need --variant NAME (the scale's own runs stay as they are)")
    if args.labels and any(n < 1 for n in args.labels):
        sys.exit(f"error: --labels must be positive integers, got {args.labels}")
    var = Variant(
        args.variant, list(args.pretrain_args), list(args.eval_args), tuple(args.tasks), args.labels, args.encoders_of
    )
    paths = {
        pde: run_pde(pde, scale, out, args.device, runner, seeds, pretrain_only=args.pretrain_only, variant=var)
        for pde in args.pdes
    }
    if args.dry_run:
        return
    print("\n" + summarise(paths, out, args, runner, time.perf_counter() - t0))
    stem = f"summary_{args.variant}" if args.variant else "summary"
    print(f"summary: {out / stem}.md, {out / stem}.json")


if __name__ == "__main__":
    main()
