"""``ssl-pde-pretrain``: joint-embedding pretraining (VICReg by default; ``method=barlow``, ``method=simclr``) with
Lightning, configured by Hydra.

    ssl-pde-pretrain experiment=burgers_vicreg data.dir=data
    ssl-pde-pretrain experiment=burgers_vicreg ckpt_path=last     # resume: optimizer, scheduler, step, W&B run
    ssl-pde-pretrain debug=smoke data.dir=data                    # a few steps on the CPU

Writes ``run_dir/checkpoints/{last,best}.ckpt``, W&B (offline) and CSV logs, the resolved
``config.yaml``, and at the end ``encoder.pt``: the encoder's weights with its config, for downstream use. A mixed
run (``experiment=mixed_1d_vicreg``) writes ``encoder_<pde>.pt`` for each PDE of the mix instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import ssl_pde.config  # noqa: F401  (registers the config resolvers)
from ssl_pde.core.cli import hydra_entry
from ssl_pde.core.errors import UserError
from ssl_pde.core.paths import check_output_dir
from ssl_pde.lit.vicreg import MIN_PROBE_SAMPLES

log = logging.getLogger("ssl_pde.pretrain")


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Any]:
    """Instantiate the loggers; W&B gets the resolved config at init and a run id kept in run_dir."""
    loggers = []
    for name, lcfg in (cfg.get("logger") or {}).items():
        if lcfg is None:
            continue
        if "Wandb" in lcfg._target_:
            id_file = run_dir / "wandb_run_id.txt"
            run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
            id_file.write_text(run_id)
            make = hydra.utils.instantiate(lcfg, _partial_=True)  # `config` clashes with instantiate's own argument
            loggers.append(make(id=run_id, resume="allow", config=OmegaConf.to_container(cfg, resolve=True)))
        else:
            loggers.append(hydra.utils.instantiate(lcfg))
        log.info("logger %s: %s", name, lcfg._target_)
    return loggers


def resolve_ckpt(cfg: DictConfig, run_dir: Path) -> str | None:
    """``ckpt_path``: null, "last" (run_dir/checkpoints/last.ckpt) or a file of ``run_dir/checkpoints/``.

    A Lightning checkpoint is a pickle, and unpickling runs whatever it names: only the run's own checkpoints
    (written by this project into this run directory) are resumed from; any other path, or a missing file,
    is refused."""
    if cfg.ckpt_path in (None, ""):
        return None
    own = (run_dir / "checkpoints").resolve()
    path = own / "last.ckpt" if cfg.ckpt_path == "last" else Path(cfg.ckpt_path).resolve()
    if path.parent != own:
        raise UserError(
            f"ckpt_path={cfg.ckpt_path}: only this run's own checkpoints ({own}/) are resumed from; a checkpoint "
            "from elsewhere is a pickle that could run code (share encoders as encoder.pt exports)"
        )
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found (ckpt_path={cfg.ckpt_path})")
    return str(path)


def export_encoder(model: torch.nn.Module, cfg: DictConfig, path: Path, member: str | None = None) -> None:
    """Save the encoder alone: weights plus the encoder and view configs needed to rebuild and feed it.

    ``member``: a PDE of a mixed run (``data=mixed``): the export is that PDE's, an ordinary single-PDE export
    (its views ``augment.views.<member>``, its dataset, its probe parameter from ``pde.members.<member>``) of the
    mixed run's weights, with ``mixed`` recording the run's mixing weights; ``ssl-pde-eval`` reads it as any other.
    """
    payload: dict[str, Any] = {
        "state_dict": model.encoder.state_dict(),
        "encoder": OmegaConf.to_container(cfg.encoder, resolve=True),
        "seed": int(cfg.seed),  # the pretraining seed: ssl-pde-eval seeds each encoder's cells from it
    }
    if member is None:
        payload.update(
            augment=OmegaConf.to_container(cfg.augment, resolve=True),
            pde=cfg.pde.name,
            dataset=cfg.data.dataset,
            probe_param=cfg.pde.probe_param,
            probe_log=cfg.pde.probe_log,
        )
    else:
        payload.update(
            augment=OmegaConf.to_container(cfg.augment.views[member], resolve=True),
            pde=member,
            dataset=member,
            probe_param=cfg.pde.members[member].probe_param,
            probe_log=cfg.pde.members[member].probe_log,
            mixed={"name": str(cfg.name), "mix": {k: float(v) for k, v in cfg.data.mix.items()}},
        )
    torch.save(payload, path)


def mixed_members(cfg: DictConfig, views: Any, train_set: Any) -> list[str]:
    """The PDEs of a mixed run (``augment=mixed_1d``, ``data=mixed``), one ``encoder_<pde>.pt`` each; ``[]`` for a
    run of one dataset. Refuses a mix whose views or data are not both mixed, or a PDE without a ``pde.members``
    entry (the export's probe parameter), before anything is written."""
    from ssl_pde.augment.mixed import MixedViews

    mixed_views, mixed_data = isinstance(views, MixedViews), hasattr(train_set, "datasets")
    if mixed_views != mixed_data:
        raise UserError(
            "mixed pretraining needs mixed views and mixed data together (experiment=mixed_1d_vicreg: "
            f"augment=mixed_1d data=mixed); got augment {cfg.augment._target_}, data {cfg.data._target_}"
        )
    if not mixed_views:
        return []
    members = cfg.pde.get("members") or {}
    missing = [n for n in train_set.names if n not in members]
    if missing:
        raise UserError(f"pde.members has no entry for {missing} (their exports' probe parameters): use pde=mixed_1d")
    return list(train_set.names)


def method_id(method: Any) -> str:
    """The objective a ``method`` config trains: its ``objective._target_`` (barlow, simclr), else its module's
    ``_target_`` (vicreg)."""
    obj = method.get("objective") if hasattr(method, "get") else None
    return str((obj or {}).get("_target_") or method.get("_target_"))


def check_run_dir_method(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse to start a run of one objective in a run directory holding another's (``config.yaml``): the
    experiments name their runs ``<dataset>_vicreg``, so ``method=barlow`` without ``name=`` would otherwise
    overwrite a VICReg run's checkpoints and ``encoder.pt``."""
    old = run_dir / "config.yaml"
    if not old.is_file():
        return
    prev = OmegaConf.load(old).get("method")
    if prev is not None and method_id(prev) != method_id(cfg.method):
        raise UserError(
            f"run_dir {run_dir} holds a run of {method_id(prev).rsplit('.', 1)[-1]}, this one trains "
            f"{method_id(cfg.method).rsplit('.', 1)[-1]}: give it its own name= or run_dir="
        )


def keep_run_precision(cfg: DictConfig, run_dir: Path, resuming: bool) -> str | None:
    """A resumed run keeps the precision it was started with (its ``config.yaml``), unless the command line sets
    ``trainer.precision``: a run started in bf16 (or with ``${cpu_precision:}``, which resolves by the machine)
    and resumed with the trainer's default must not change precision halfway without saying so. Returns the
    line for the run's log when the two differ, else None."""
    old = run_dir / "config.yaml"
    if not resuming or not old.is_file():
        return None
    saved = (OmegaConf.load(old).get("trainer") or {}).get("precision")
    now = cfg.trainer.get("precision")
    if saved is None or str(saved) == str(now):
        return None
    given = HydraConfig.initialized() and any(
        o.lstrip("+~").startswith("trainer.precision=") for o in HydraConfig.get().overrides.task
    )
    if given:
        return f"resuming a run started with precision {saved} in precision {now} (given on the command line)"
    cfg.trainer.precision = saved
    return f"resuming with the run's own precision {saved} (the trainer's default here: {now})"


def _start_run_dir(cfg: DictConfig, run_dir: Path) -> logging.Handler:
    """Create ``run_dir`` with the resolved ``config.yaml`` and the command's overrides; log to ``pretrain.log``.

    Called only after every check has passed, so a refused run leaves nothing behind. Returns the log file's
    handler (appending: a resumed run's log continues the first one's).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    if HydraConfig.initialized():
        (run_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(list(HydraConfig.get().overrides.task)))
    handler = logging.FileHandler(run_dir / "pretrain.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    for name in ("ssl_pde", "lightning"):
        logging.getLogger(name).addHandler(handler)
    return handler


def _callbacks(cfg: DictConfig, n_valid: int) -> list[Any]:
    """The configured callbacks. Without an online probe (no ``pde.probe_param``, or fewer than
    :data:`~ssl_pde.lit.vicreg.MIN_PROBE_SAMPLES` validation trajectories) those monitoring its metrics
    (``best.ckpt``) are left out, and ``last.ckpt`` is the run's checkpoint."""
    why = None
    if not cfg.pde.probe_param:
        why = "pde.probe_param is null"
    elif n_valid < MIN_PROBE_SAMPLES:
        why = f"{n_valid} validation trajectories, it needs {MIN_PROBE_SAMPLES}"
    out = []
    for name, c in (cfg.get("callbacks") or {}).items():
        if c is None:
            continue
        if why and str(c.get("monitor") or "").startswith("val/probe"):
            log.info("no online probe (%s): callback %s, monitoring %s, left out", why, name, c.monitor)
            continue
        out.append(hydra.utils.instantiate(c))
    return out


def check_corruption(corrupt: Any, n_spatial_dims: int) -> None:
    """Refuse a bad ``method.corrupt`` (a level out of range, ``drop_x`` for 2D data) before anything is written."""
    from ssl_pde.augment.corrupt import Corruption

    if corrupt is not None:
        c = Corruption.from_mapping(OmegaConf.to_container(corrupt, resolve=True), "method.corrupt")
        c.check_dims(n_spatial_dims, "method.corrupt")


def pretrain(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> dict[str, Any]:
    """Build everything from the config, fit, export; return the final logged metrics.

    ``extra_callbacks`` join the configured ones (e.g. a caller's own progress display).

    Every check that can refuse the run (views, run directory, checkpoint, data) comes before anything is
    written: a refused run leaves no run directory, log or W&B run.
    """
    views = hydra.utils.instantiate(cfg.augment)
    run_dir = Path(cfg.run_dir)
    check_output_dir(run_dir, "run_dir")
    ckpt = resolve_ckpt(cfg, run_dir)
    check_run_dir_method(cfg, run_dir)
    precision_note = keep_run_precision(cfg, run_dir, resuming=ckpt is not None)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    for key, value in views.check_dataset(datamodule.train_set).items():  # settings read from the data
        cfg.augment[key] = value  # into config.yaml and encoder.pt
    check_corruption(cfg.method.get("corrupt"), datamodule.train_set.n_spatial_dims)
    members = mixed_members(cfg, views, datamodule.train_set)
    with torch.random.fork_rng():  # the encoder config refused before anything is written; RNG state untouched
        hydra.utils.instantiate(cfg.encoder)
    handler = _start_run_dir(cfg, run_dir)
    if precision_note:
        log.warning(precision_note)
    try:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        encoder = hydra.utils.instantiate(cfg.encoder)
        if cfg.compile:
            encoder = torch.compile(encoder)
        model = hydra.utils.instantiate(
            cfg.method, encoder=encoder, views=views, optimizer=hydra.utils.instantiate(cfg.optim)
        )
        callbacks = [*_callbacks(cfg, len(datamodule.val_set)), *extra_callbacks]
        trainer = hydra.utils.instantiate(cfg.trainer, logger=build_loggers(cfg, run_dir), callbacks=callbacks)
        log.info(
            "pretraining %s on %d trajectories (seed %d), run_dir %s",
            cfg.data.dataset,
            len(datamodule.train_set),
            cfg.seed,
            run_dir,
        )
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt)
        for lg in trainer.loggers:  # close this run's W&B run, so that a later W&B run in this process is its own
            if type(lg).__name__ == "WandbLogger" and trainer.is_global_zero and lg._experiment is not None:
                lg.experiment.finish()
        if cfg.export_encoder and trainer.is_global_zero:
            for member in members:  # a mixed run: one export per PDE, the same weights with that PDE's views
                export_encoder(model, cfg, run_dir / f"encoder_{member}.pt", member)
                log.info("encoder exported for %s to %s", member, run_dir / f"encoder_{member}.pt")
            if not members:
                export_encoder(model, cfg, run_dir / "encoder.pt")
                log.info("encoder exported to %s", run_dir / "encoder.pt")
        return {k: float(v) for k, v in trainer.callback_metrics.items()}
    finally:
        for name in ("ssl_pde", "lightning"):
            logging.getLogger(name).removeHandler(handler)
        handler.close()


main = hydra_entry(
    "pretrain",
    pretrain,
    "interrupted: resume with ckpt_path=last",
)

if __name__ == "__main__":
    main()
