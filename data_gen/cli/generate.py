"""``ssl-pde-generate``: write trajectories of one PDE and split to HDF5 shards, resumably.

    ssl-pde-generate pde=kdv split=train num_samples=10000 out_dir=data device=auto seed=0

Shards land in ``<out_dir>/<pde>/<split>/shard-NNNNN.h5``. Rerunning the same command skips complete
shards made with the same settings and regenerates the rest, so a killed run resumes where it stopped.

Several processes can fill one directory at once: ``worker=i num_workers=n`` takes the shards whose index is
``i`` modulo ``n`` (e.g. a SLURM job array), and runs of the same command coordinate through per-shard claims
(:mod:`data_gen.claims`): each shard is written by one process, a run waits for shards another live process
is writing, and the result is the same files, bit for bit in their data, as one process would write.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from data_gen.claims import leftover_temps, try_claim
from data_gen.solvers import SOLVERS, ConfigError
from data_gen.verify import estimate_time_error
from data_gen.writer import existing_shard_status, generate_shard_data, plan_shards, write_shard
from ssl_pde.core.cli import UserError, hydra_entry, resolve_device
from ssl_pde.core.paths import check_output_dir
from ssl_pde.data.schema import SPLITS, shard_path

log = logging.getLogger("ssl_pde.generate")
RUN_ONLY_KEYS = ("worker", "num_workers", "progress", "device")  # how a run was made, not what it made
CLAIM_POLL_SECONDS = 0.5
DEVICE_TYPES = ("cpu", "cuda")  # the keys of a per-device batch_size (the devices resolve_device accepts)


def build_generator(solver_cfg: DictConfig):
    """Instantiate the solver config, turning construction errors into :class:`ConfigError`."""
    try:
        return hydra.utils.instantiate(solver_cfg)
    except InstantiationException as e:
        cause = e.__cause__ or e
        if isinstance(cause, ConfigError | TypeError):
            raise ConfigError(f"solver: {cause}") from None
        raise


def _positive_int(name: str, v) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise UserError(f"{name} must be a positive integer, got {v!r}")
    return v


def batch_size_for(value, device: torch.device) -> int:
    """The number of trajectories solved at once on ``device``.

    ``value`` is a positive integer, or a mapping from device type to one (``{cpu: 1, cuda: 16}``, the ns2d
    default): a CPU core runs the ns2d step fastest on one trajectory whose arrays stay in its cache, a GPU needs
    many to fill it (docs/data.md). The batch does not change which trajectories a shard holds (their seeds come
    from their indices), so shards resume across devices.

    Raises:
        UserError: not a positive integer, or a mapping without an entry for ``device``'s type.
    """
    if isinstance(value, Mapping | DictConfig):
        odd = [str(k) for k in value if k not in DEVICE_TYPES]
        if odd:
            raise UserError(f"batch_size has entries for unknown device types {odd} (use {', '.join(DEVICE_TYPES)})")
        if device.type not in value:
            raise UserError(
                f"batch_size has no entry for device type {device.type!r} (it has: {', '.join(map(str, value))}); "
                f"set pde.batch_size.{device.type}=N or batch_size=N"
            )
        return _positive_int(f"batch_size.{device.type}", value[device.type])
    return _positive_int("batch_size", value)


def generate(cfg: DictConfig) -> list[Path]:
    """Generate every missing shard of ``cfg.pde.name`` / ``cfg.split``; return the shard paths."""
    pde = cfg.pde.name
    if pde not in SOLVERS:
        raise UserError(f"unknown pde {pde!r} (choose from: {', '.join(SOLVERS)})")
    if cfg.split not in SPLITS:
        raise UserError(f"unknown split {cfg.split!r} (choose from: {', '.join(SPLITS)})")
    for name in ("num_samples", "shard_size"):
        _positive_int(name, cfg[name])
    if not 0 <= cfg.max_reject_fraction < 1:
        raise UserError(f"max_reject_fraction must lie in [0, 1), got {cfg.max_reject_fraction!r}")
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {cfg.seed!r}")
    worker, num_workers = cfg.get("worker", 0), cfg.get("num_workers", 1)  # configs embedding generate's may omit
    if not isinstance(num_workers, int) or num_workers < 1:
        raise UserError(f"num_workers must be a positive integer, got {num_workers!r}")
    if not isinstance(worker, int) or not 0 <= worker < num_workers:
        raise UserError(f"worker must be an integer in [0, num_workers={num_workers}), got {worker!r}")
    gen = build_generator(cfg.solver)
    if gen.pde != pde:
        raise UserError(f"solver {cfg.solver._target_} solves {gen.pde!r}, not pde={pde!r}")
    device = resolve_device(cfg.device)
    batch_size = batch_size_for(cfg.batch_size, device)
    out_dir = Path(cfg.out_dir)
    check_output_dir(out_dir, "out_dir")
    err = estimate_time_error(gen, np.arange(2, dtype=np.int64) + cfg.seed, str(device))
    if not err <= cfg.max_time_error:
        raise ConfigError(
            f"time step too large: estimated relative error {err:.3g} of one run with dt_max={gen.dt_max:g} "
            f"exceeds max_time_error={cfg.max_time_error:g} ({'unstable' if math.isinf(err) else 'inaccurate'}); "
            f"lower solver.dt_max"
        )
    solver_cfg = OmegaConf.to_container(cfg.solver, resolve=True)
    plans = plan_shards(cfg.num_samples, cfg.shard_size, solver_cfg, cfg.seed, cfg.split)
    split_dir = out_dir / pde / cfg.split
    created = [d for d in (split_dir, *split_dir.parents) if not d.exists()][::-1]  # outermost first
    split_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _generate_shards(
            cfg, gen, device, out_dir, split_dir, plans, workers=(worker, num_workers), batch_size=batch_size
        )
    except BaseException:
        for d in reversed(created):  # leave nothing behind that this run created and did not fill
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise


def _generate_shards(
    cfg: DictConfig,
    gen,
    device,
    out_dir: Path,
    split_dir: Path,
    plans: list,
    workers: tuple[int, int],
    batch_size: int,
) -> list[Path]:
    """Write this worker's missing shards, each under a claim; wait for shards other live processes hold.

    ``workers``: (this worker, number of workers); the worker takes the shards whose index is its number modulo
    the number of workers. ``batch_size``: trajectories solved at once (:func:`batch_size_for`)."""
    pde = cfg.pde.name
    worker, num_workers = workers
    paths = [shard_path(out_dir, pde, cfg.split, plan.index) for plan in plans]
    mine = [plan for plan in plans if plan.index % num_workers == worker]
    todo = []
    for plan in mine:
        path = shard_path(out_dir, pde, cfg.split, plan.index)
        status = existing_shard_status(path, plan.key)
        if status == "done":
            continue
        if status == "different" and not cfg.overwrite:
            raise UserError(f"{path} was made with other settings; use another out_dir or overwrite=true")
        todo.append(plan)
    total = sum(p.n for p in mine)
    n_done = total - sum(p.n for p in todo)
    who = f" (worker {worker} of {num_workers})" if num_workers > 1 else ""
    log.info(
        "%s/%s%s: %d trajectories in %d shards under %s on %s (%d already present)",
        *(pde, cfg.split, who, total, len(mine), split_dir, device, n_done),
    )
    stored = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in RUN_ONLY_KEYS}
    stored["batch_size"] = batch_size  # the number used on this device, not a per-device mapping
    config_yaml = OmegaConf.to_yaml(OmegaConf.create(stored))
    t0 = time.perf_counter()
    made_n = 0
    with Progress(
        TextColumn(f"[bold]{pde}/{cfg.split}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} traj/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not cfg.progress,
    ) as bar:
        task = bar.add_task("generate", total=total, completed=n_done, rate="-")
        made = 0.0

        def advance(k: float) -> None:
            nonlocal made
            made += k
            bar.update(task, advance=k, rate=f"{made / max(time.perf_counter() - t0, 1e-9):.3g}")

        waiting = False
        while todo:
            held_elsewhere = []
            for plan in todo:
                path = shard_path(out_dir, pde, cfg.split, plan.index)
                claim = try_claim(path)
                if claim is None:  # another live process is writing it
                    held_elsewhere.append(plan)
                    continue
                try:
                    if existing_shard_status(path, plan.key) == "done":  # written meanwhile by another process
                        n_done += plan.n
                        bar.update(task, completed=n_done)
                        continue
                    for stale in leftover_temps(path):  # their writer is dead: it held this claim
                        log.info("removing unfinished %s from an interrupted run", stale)
                        stale.unlink()
                    data, seeds, rejections = generate_shard_data(
                        gen,
                        cfg.seed,
                        cfg.split,
                        plan.index,
                        plan.n,
                        batch_size,
                        device=device,
                        max_reject_fraction=cfg.max_reject_fraction,
                        progress=advance,
                    )
                    write_shard(
                        path, data, seeds, gen, cfg.split, plan.key, config_yaml=config_yaml, rejections=rejections
                    )
                finally:
                    claim.release()
                made_n += plan.n
                n_done += plan.n
                bar.update(task, completed=n_done)
                log.info("wrote %s (%d trajectories, %d rejected and replaced)", path, plan.n, sum(rejections.values()))
            todo = held_elsewhere
            if todo:
                if not waiting:
                    log.info("waiting for %d shard(s) another process is writing", len(todo))
                    waiting = True
                time.sleep(CLAIM_POLL_SECONDS)
    elapsed = time.perf_counter() - t0
    if made_n:
        log.info("generated %d trajectories in %.1f s (%.3g traj/s)", made_n, elapsed, made_n / elapsed)
    return paths


main = hydra_entry(
    "generate",
    generate,
    "interrupted: complete shards are kept; rerun the same command to resume",
)

if __name__ == "__main__":
    main()
