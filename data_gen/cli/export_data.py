"""``ssl-pde-export``: write this project's schema-v1 shards in another project's format, resumably.

    ssl-pde-export format=well src=data out_dir=well    # -> well/datasets/<dataset>/data/<split>/shard-NNNNN.hdf5

then, with ``pip install the-well`` (or this project's ``.[well]`` extra)::

    from the_well.data import WellDataset
    from the_well.data.normalization import ZScoreNormalization
    ds = WellDataset(path="well/datasets/ks", well_split_name="train", use_normalization=False)
    ds = WellDataset(path="well/datasets/ks", well_split_name="valid", use_normalization=True,
                     normalization_type=ZScoreNormalization)  # with well/datasets/ks/stats.yaml (train split's)

``src`` is a shard, or a directory searched recursively for ``shard-*.h5`` (every dataset and split below it); one
file of The Well is written per shard. Every shard is validated, mapped and hashed before anything is written, so
a shard that cannot be exported, or shards of one dataset and split that WellDataset could not read as one
directory, stop the run with one line naming them and nothing written. A file is written to a temporary file and
renamed when complete; a rerun skips the complete files of the same shards, so an interrupted run resumes.

Once every file is there, each dataset with a train split in the run gets ``<dataset>/stats.yaml``, the
normalisation statistics of its train files (:func:`data_gen.exporters.well.write_stats`), computed in one last
pass over the files of ``data/train`` (written now or before): a resumed run's statistics cover every train file
once, and a rerun that changes no train file leaves them as they are. A dataset exported without its train split
gets none (a line in the log says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from data_gen.claims import removing_new_dirs, write_claimed
from data_gen.cli import check_format_and_src
from data_gen.exporters import FORMATS, well
from data_gen.importers.shards import file_sha256
from ssl_pde.core.cli import UserError, hydra_entry
from ssl_pde.core.paths import check_output_dir
from ssl_pde.data.schema import list_shards

log = logging.getLogger("ssl_pde.export")


@dataclass(frozen=True)
class Job:
    """One file to have: where it goes, what it holds, the root attributes naming its source."""

    path: Path
    plan: well.WellPlan
    provenance: dict[str, str]

    @property
    def key(self) -> str:
        return self.provenance["ssl_pde_export_key"]


def check_config(cfg: DictConfig) -> None:
    """Refuse a bad setting (format, src, out_dir) with one line naming it."""
    check_format_and_src(cfg, FORMATS, "a shard or a directory of shards")
    if OmegaConf.is_missing(cfg, "out_dir") or not cfg.out_dir:
        raise UserError("out_dir is required: the directory receiving datasets/<dataset>/data/<split>/ (out_dir=PATH)")
    check_output_dir(Path(cfg.out_dir), "out_dir")
    for key in ("param_components", "overwrite"):
        if not isinstance(cfg[key], bool):
            raise UserError(f"{key} must be true or false, got {cfg[key]!r}")


def output_path(out_dir: Path, p: well.WellPlan) -> Path:
    """``<out_dir>/datasets/<dataset>/data/<split>/<shard name>.hdf5``: The Well's layout under a base path."""
    return out_dir / "datasets" / p.dataset / "data" / p.split / (p.source.stem + well.SUFFIX)


def plan(src: Path, out_dir: Path, components: bool = True) -> list[Job]:
    """Validate, map and hash every shard at or below ``src``, in path order (``components``: see
    :func:`data_gen.exporters.well.plan`).

    Raises:
        UserError: no shard; a shard that is invalid or cannot be mapped; two shards with one output file; shards of
            one dataset and split whose grids, fields or parameters differ (WellDataset reads a directory as one).
    """
    shards = list_shards(src)
    if not shards:
        raise UserError(f"no shard-*.h5 files under src {str(src)!r}")
    jobs: list[Job] = []
    first: dict[tuple[str, str], well.WellPlan] = {}
    owner: dict[Path, Path] = {}
    for path in shards:
        p = well.plan(path, components)
        out = output_path(out_dir, p)
        if out in owner:
            raise UserError(f"{owner[out]} and {path} would both be written to {out}; export them separately")
        owner[out] = path
        ref = first.setdefault((p.dataset, p.split), p)
        if p.layout() != ref.layout():
            raise UserError(
                f"{path}: its grid, channels or parameters differ from those of {ref.source} ({p.dataset}, "
                f"{p.split}); WellDataset reads one layout per directory: export them to separate out_dir"
            )
        sha = file_sha256(path)
        provenance = {
            "ssl_pde_source_file": path.name,
            "ssl_pde_source_sha256": sha,
            "ssl_pde_export_key": well.export_key(p, sha),
        }
        jobs.append(Job(out, p, provenance))
    return jobs


def export_data(cfg: DictConfig) -> list[Path]:
    """Export every shard under ``cfg.src``; return the paths of the files (written now or before)."""
    check_config(cfg)
    out_dir = Path(cfg.out_dir)
    jobs = plan(Path(cfg.src), out_dir, cfg.param_components)
    todo = []
    for job in jobs:
        key = well.existing_key(job.path)
        if key is not None and key != job.key and not cfg.overwrite:
            raise UserError(f"{job.path} holds other data; use another out_dir or overwrite=true")
        if key != job.key:
            todo.append(job)
    trains = _train_datasets(jobs)
    for directory in trains:
        if well.existing_stats(directory) == "" and not cfg.overwrite:
            raise UserError(f"{well.stats_path(directory)} holds other data; use another out_dir or overwrite=true")
    log.info("%s: %d file(s), %d already present", cfg.src, len(jobs), len(jobs) - len(todo))
    with removing_new_dirs(j.path for j in todo):
        for directory in _train_datasets(todo):  # its train files change: no stats.yaml until they are all there
            well.stats_path(directory).unlink(missing_ok=True)
        for job in todo:
            job.path.parent.mkdir(parents=True, exist_ok=True)
            done = partial(_done, job)
            if write_claimed(job.path, done=done, write=partial(well.write, job.path, job.plan, job.provenance)):
                log.info("wrote %s (N=%d, from %s)", job.path, job.plan.n, job.plan.source)
        for directory, paths in trains.items():
            _write_stats(directory, paths)
    for dataset in sorted({j.plan.dataset for j in jobs} - {d.name for d in trains}):
        log.info("%s: no train split in this run, so no stats.yaml written (it holds the train split's)", dataset)
    return [j.path for j in jobs]


def _train_datasets(jobs: list[Job]) -> dict[Path, list[Path]]:
    """``<out_dir>/datasets/<dataset>`` -> the train files of ``jobs`` there, for each dataset with some."""
    out: dict[Path, list[Path]] = {}
    for job in jobs:
        if job.plan.split == "train":
            out.setdefault(job.path.parents[2], []).append(job.path)
    return out


def _write_stats(directory: Path, paths: list[Path]) -> None:
    """Write the dataset's ``stats.yaml`` from every file of its train directory, unless it is up to date."""
    path = well.stats_path(directory)
    files = well.train_files(directory)
    others = sorted({p.name for p in files} - {p.name for p in paths})
    if others:
        log.warning(
            "%s also holds %d train file(s) not from this run (%s, ...): WellDataset reads them, so %s covers them",
            directory / "data" / "train",
            len(others),
            others[0],
            path.name,
        )
    if write_claimed(path, done=partial(well.stats_current, directory), write=partial(well.write_stats, directory)):
        log.info("wrote %s (statistics of the %d train file(s))", path, len(files))
    else:
        log.info("%s: up to date", path)


def _done(job: Job) -> bool:
    """Whether ``job``'s file is complete, from the same shard."""
    return well.existing_key(job.path) == job.key


main = hydra_entry("export", export_data, "interrupted: complete files are kept; rerun the same command to resume")

if __name__ == "__main__":
    main()
