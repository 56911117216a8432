"""``ssl-pde-import``: convert external PDE datasets into schema-v1 HDF5 shards, resumably.

    ssl-pde-import format=lpsda src=lpsda/data out_dir=data            # KdV_*, KS_* -> kdv, ks; Heat_* -> heat
    ssl-pde-import format=pdearena src=NavierStokes2D_smoke out_dir=data   # -> ns2d
    ssl-pde-import format=well src=the_well/datasets/<name>/data out_dir=data   # -> <name> (external)
    ssl-pde-import format=pdebench src=1D_Burgers_Sols_Nu0.01.hdf5 split=train out_dir=data   # -> burgers

``src`` is a file or a directory searched recursively for ``*.h5`` / ``*.hdf5``. Shards land in
``<out_dir>/<dataset>/<split>/shard-NNNNN.h5``, numbered across the source files of one dataset and split in the
order of their paths; a shard holds rows of one source file only. Every source file is mapped (and hashed) before
anything is written, so a file that cannot be mapped stops the run with one line naming it and the key, and
nothing written. Rerunning skips complete shards of the same source; an interrupted run resumes.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import h5py
from omegaconf import DictConfig, OmegaConf

from data_gen.claims import removing_new_dirs, write_claimed
from data_gen.cli import check_format_and_src
from data_gen.importers import IMPORTERS, SUFFIXES, SourceError
from data_gen.importers.shards import ShardInfo, file_sha256, write_shard
from data_gen.writer import existing_shard_status
from ssl_pde.core.cli import UserError, hydra_entry
from ssl_pde.core.paths import check_output_dir
from ssl_pde.data.schema import SPLITS, shard_path

log = logging.getLogger("ssl_pde.import")
RUN_ONLY_KEYS = ("overwrite",)  # how a run was made, not what it made


@dataclass(frozen=True)
class Job:
    """One shard to have: where it goes and what it holds."""

    path: Path
    info: ShardInfo


def source_files(src: Path, out_dir: Path) -> list[Path]:
    """``src`` itself, or every ``*.h5`` / ``*.hdf5`` below it (outside ``out_dir``), sorted by path."""
    if src.is_file():
        return [src]
    out = out_dir.resolve()
    found = (p for p in src.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    return sorted(p for p in found if not p.resolve().is_relative_to(out))


def open_source(path: Path) -> h5py.File:
    """Open a source file read-only, or a :class:`SourceError` naming it."""
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise SourceError(f"{path}: not a readable HDF5 file ({e})") from None


def resolve_split(stated: str | None, option: str | None, path: Path) -> str:
    """The source's own split where it states one, else the ``split=`` option; a contradiction is refused."""
    if stated is None:
        if option is None:
            raise UserError(f"{path}: the source does not say its split; pass split=train, valid or test")
        return option
    if option is not None and option != stated:
        raise UserError(f"{path}: the source says split {stated!r}, not split={option!r} (drop split= for it)")
    return stated


def plan(cfg: DictConfig, files: list[Path], config_yaml: str) -> list[Job]:
    """Map and hash every source file; number its shards after those of earlier files of the same dataset and split."""
    importer, out_dir = IMPORTERS[cfg["format"]], Path(cfg.out_dir)
    jobs: list[Job] = []
    count: Counter = Counter()
    for path in files:
        with open_source(path) as f:
            m = importer(f, path)
        if m.n < 1:
            raise SourceError(f"{path}: no trajectories")
        split = resolve_split(m.split, cfg.split, path)
        sha = file_sha256(path)
        for i0 in range(0, m.n, cfg.shard_size):
            rows = (i0, min(i0 + cfg.shard_size, m.n))
            info = ShardInfo(
                fmt=cfg["format"], source=path, sha256=sha, rows=rows, split=split, config_yaml=config_yaml
            )
            jobs.append(Job(shard_path(out_dir, m.dataset, split, count[m.dataset, split]), info))
            count[m.dataset, split] += 1
    return jobs


def check_config(cfg: DictConfig) -> None:
    """Refuse a bad setting (format, src, split, shard_size) with one line naming it."""
    check_format_and_src(cfg, IMPORTERS, "a source file or a directory of them")
    if cfg.split is not None and cfg.split not in SPLITS:
        raise UserError(f"unknown split {cfg.split!r} (choose from: {', '.join(SPLITS)})")
    v = cfg.shard_size
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise UserError(f"shard_size must be a positive integer, got {v!r}")


def import_data(cfg: DictConfig) -> list[Path]:
    """Import every source file under ``cfg.src``; return the shard paths (written now or before)."""
    check_config(cfg)
    out_dir = Path(cfg.out_dir)
    check_output_dir(out_dir, "out_dir")
    files = source_files(Path(cfg.src), out_dir)
    if not files:
        raise UserError(f"no {' or '.join(SUFFIXES)} files under src {cfg.src!r}")
    stored = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in RUN_ONLY_KEYS}
    jobs = plan(cfg, files, OmegaConf.to_yaml(OmegaConf.create(stored)))
    todo = []
    for job in jobs:
        status = existing_shard_status(job.path, job.info.key)
        if status == "different" and not cfg.overwrite:
            raise UserError(f"{job.path} holds other data; use another out_dir or overwrite=true")
        if status != "done":
            todo.append(job)
    log.info(
        "%s: %d shard(s) from %d file(s), %d already present", cfg.src, len(jobs), len(files), len(jobs) - len(todo)
    )
    with removing_new_dirs(j.path for j in todo):
        _write(cfg["format"], todo)
    return [j.path for j in jobs]


def _write(fmt: str, todo: list[Job]) -> None:
    """Write the shards of ``todo``, each source file opened once, each shard under a claim."""
    for source, group in itertools.groupby(todo, key=lambda j: j.info.source):
        with open_source(source) as f:
            mapped = IMPORTERS[fmt](f, source)
            for job in group:
                job.path.parent.mkdir(parents=True, exist_ok=True)
                done = partial(_done, job)
                if not write_claimed(job.path, done=done, write=partial(write_shard, job.path, mapped, job.info)):
                    continue
                i0, i1 = job.info.rows
                log.info("wrote %s (trajectories %d:%d of %s)", job.path, i0, i1, source.name)


def _done(job: Job) -> bool:
    """Whether ``job``'s shard is complete, with the same source and rows."""
    return existing_shard_status(job.path, job.info.key) == "done"


main = hydra_entry("import", import_data, "interrupted: complete shards are kept; rerun the same command to resume")

if __name__ == "__main__":
    main()
